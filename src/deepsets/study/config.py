"""Settings of the power-spectrum study: one dataclass, two presets, files and flags.

Every setting is a field of :class:`PowerSpectrumConfig`, a command-line flag
(``--field-name``) and a config-file entry (JSON, or TOML by the ``.toml`` suffix).
Values are resolved in this order, later ones winning: the preset, the config file, the
flags. The resolved configuration is written to the run directory as ``config.json``,
which can be passed back with ``--config`` to repeat the run.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from .._validation import resolve_option
from ..tasks._config_files import read_config_file

__all__ = [
    "PRESETS",
    "PowerSpectrumConfig",
    "Preset",
    "add_config_arguments",
    "config_from_args",
    "load_config_file",
]


class _Schedule(str, Enum):
    """Learning-rate schedules the study offers (a subset of the engine's)."""

    CONSTANT = "constant"
    COSINE = "cosine"


class Preset(str, Enum):
    """Named starting points of :class:`PowerSpectrumConfig`."""

    QUICK = "quick"
    PAPER = "paper"


@dataclass
class PowerSpectrumConfig:
    """Every setting of ``deepsets power-spectrum``.

    Attributes:
        preset: the preset the other values started from (``quick`` or ``paper``).
        out: run directory (report, metrics, figures, checkpoints, logs).
        resume: continue interrupted training runs from their ``last.ckpt``.
        seeds: seeds of the main models (initialisation and training stream).
        encodings: input encodings of the main models; the first is the headline model.
        k_max: highest frequency in the training functions (eq. 4).
        k_fin: frequencies predicted, ``k = 1..k_fin``.
        set_size: samples per function ``N`` during training.
        batch_size: functions per optimiser step (per process).
        depth: equivariant layers ``D`` of the main model.
        width: channels ``K_hide`` of the main model.
        steps: optimiser steps of each main model.
        lr: Adam's learning rate (peak, for the cosine schedule).
        lr_schedule: ``constant`` (as in the seed) or ``cosine`` (decays to 0).
        test_sets: functions in the fixed test set.
        test_seed: seed of every test set (the same for all models).
        lstsq_k: frequencies of the least-squares Fourier fit baseline (``≥ k_fin``).
        grid_depths: depths of figures 2–3 (depth × width grid).
        grid_widths: widths of figures 2–3.
        grid_seeds: seeds per grid cell.
        grid_steps: optimiser steps of each grid model.
        grid_encoding: encoding of the grid models.
        sweep_sizes: test set sizes ``N`` of figure 4.
        sweep_sets: functions per size in figure 4 (the same functions at every size).
        noise_k_max: training ``k_max`` of the noise-robustness model (figure 5).
        noise_k_fin: frequencies it predicts.
        noise_test_k_max: test ``k_max`` values of figure 5.
        noise_depth: depth of the noise-robustness model.
        noise_width: width of the noise-robustness model.
        noise_steps: its optimiser steps (0 skips figure 5).
        noise_sets: test functions per ``k_max`` in figure 5.
        other_encoding_seeds: how many of ``seeds`` the encodings after the first use
            (``None``: all of them).
        workers: training runs at once, each in its own process (``1``: one after the
            other in this process). The quick preset uses three, so its three equally long
            main runs share the two cores of a small machine evenly instead of the
            third waiting for the first two.
            Must be 1 under multi-process or multi-node DDP.
        threads: torch CPU threads per process (``None``: torch's choice). Small models
            run fastest on one thread per process.
        figures: draw figures 1–5 (PNG and SVG).
        engine: Lightning settings, the fields of
            :class:`deepsets.training.EngineSettings`.
    """

    preset: str = "quick"
    out: str = "runs/power-spectrum"
    resume: bool = False
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    encodings: list[str] = field(default_factory=lambda: ["circle", "raw"])
    k_max: int = 4
    k_fin: int = 4
    set_size: int = 128
    batch_size: int = 64
    depth: int = 4
    width: int = 48
    steps: int = 7000
    lr: float = 5e-3
    lr_schedule: str = "cosine"
    test_sets: int = 1024
    test_seed: int = 2020
    lstsq_k: int = 4
    grid_depths: list[int] = field(default_factory=lambda: [1, 4])
    grid_widths: list[int] = field(default_factory=lambda: [16, 48])
    grid_seeds: list[int] = field(default_factory=lambda: [0, 1])
    grid_steps: int = 1000
    grid_encoding: str = "circle"
    sweep_sizes: list[int] = field(
        default_factory=lambda: [32, 64, 128, 256, 512, 1024, 2048, 4096]
    )
    sweep_sets: int = 512
    noise_k_max: int = 64
    noise_k_fin: int = 8
    noise_test_k_max: list[int] = field(default_factory=lambda: [8, 64, 512])
    noise_depth: int = 3
    noise_width: int = 32
    noise_steps: int = 1000
    noise_sets: int = 512
    other_encoding_seeds: int | None = 1
    workers: int = 3
    threads: int | None = 1
    figures: bool = True
    engine: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ..tasks.power_spectrum import ENCODINGS, Encoding

        self.preset = resolve_option(self.preset, Preset, name="preset").value
        for name in ("out", "lr_schedule", "grid_encoding"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str; got {type(getattr(self, name)).__name__}")
        for name in ("resume", "figures"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool; got {getattr(self, name)!r}")
        positive = (
            "k_max",
            "k_fin",
            "set_size",
            "batch_size",
            "depth",
            "width",
            "steps",
            "test_sets",
            "lstsq_k",
            "grid_steps",
            "sweep_sets",
            "noise_k_max",
            "noise_k_fin",
            "noise_depth",
            "noise_width",
            "noise_sets",
        )
        for name in positive:
            _check_int(getattr(self, name), name=name, minimum=1)
        _check_int(self.noise_steps, name="noise_steps", minimum=0)
        _check_int(self.test_seed, name="test_seed", minimum=None)
        for name in ("grid_depths", "grid_widths", "sweep_sizes", "noise_test_k_max"):
            values = _as_list(getattr(self, name), name)
            for value in values:
                _check_int(value, name=name, minimum=1)
            setattr(self, name, values)
        for name in ("seeds", "grid_seeds"):
            values = _as_list(getattr(self, name), name)
            if not values:
                raise ValueError(f"{name} must hold at least one seed; got []")
            for value in values:
                _check_int(value, name=name, minimum=None)
            setattr(self, name, values)
        encodings = [
            resolve_option(e, Encoding, name="encodings").value
            for e in _as_list(self.encodings, "encodings")
        ]
        if not encodings:
            raise ValueError(f"encodings must name at least one of {sorted(ENCODINGS)}; got []")
        self.grid_encoding = resolve_option(
            self.grid_encoding, Encoding, name="grid_encoding"
        ).value
        self.encodings = list(dict.fromkeys(encodings))
        if self.k_fin > self.k_max:
            raise ValueError(f"k_fin must be <= k_max={self.k_max}; got {self.k_fin}")
        if self.lstsq_k < self.k_fin:
            raise ValueError(f"lstsq_k must be >= k_fin={self.k_fin}; got {self.lstsq_k}")
        if self.noise_k_fin > self.noise_k_max:
            raise ValueError(
                f"noise_k_fin must be <= noise_k_max={self.noise_k_max}; got {self.noise_k_fin}"
            )
        if not (isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool)):
            raise TypeError(f"lr must be a number; got {type(self.lr).__name__}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr!r}")
        self.lr = float(self.lr)
        self.lr_schedule = resolve_option(self.lr_schedule, _Schedule, name="lr_schedule").value
        if self.threads is not None:
            _check_int(self.threads, name="threads", minimum=1)
        if self.other_encoding_seeds is not None:
            _check_int(self.other_encoding_seeds, name="other_encoding_seeds", minimum=1)
        _check_int(self.workers, name="workers", minimum=1)
        if not isinstance(self.engine, dict):
            raise TypeError(f"engine must be a dict; got {type(self.engine).__name__}")
        engine = self.engine_settings()  # fail early on bad engine settings
        distributed = engine.num_nodes > 1 or engine.devices not in ("auto", 1)
        if self.workers > 1 and (distributed or engine.strategy not in ("auto",)):
            raise ValueError(
                "workers must be 1 with DDP (strategy/devices/num_nodes); got "
                f"workers={self.workers}, strategy={engine.strategy!r}, "
                f"devices={engine.devices!r}, num_nodes={engine.num_nodes}"
            )

    def engine_settings(self) -> Any:
        """The :class:`deepsets.training.EngineSettings` of :attr:`engine`."""
        from ..training import EngineSettings

        return EngineSettings.from_dict(self.engine)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-ready values."""
        return asdict(self)


def _check_int(value: object, *, name: str, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _as_list(value: object, name: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return [value]
    raise TypeError(f"{name} must be a list; got {type(value).__name__}")


#: Preset values (fields not named keep the dataclass defaults, which are ``quick``'s).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    # The seed's scale: N = 512, batch 256, Adam with default settings, 1024 test sets,
    # a depth × width grid with several seeds per cell. Meant for GPUs or several machines.
    "paper": {
        "out": "runs/paper",
        "seeds": [0, 1, 2, 3, 4],
        "set_size": 512,
        "batch_size": 256,
        "depth": 4,
        "width": 128,
        "steps": 100_000,
        "lr": 1e-3,
        "lr_schedule": "constant",
        "grid_depths": [1, 2, 3, 4],
        "grid_widths": [8, 32, 128, 512, 2048],
        "grid_seeds": [0, 1, 2, 3, 4],
        "grid_steps": 100_000,
        "sweep_sets": 1024,
        "noise_depth": 4,
        "noise_width": 2048,
        "noise_steps": 100_000,
        "noise_sets": 1024,
        "other_encoding_seeds": None,
        "workers": 1,
        "threads": None,
        "engine": {"checkpoint_every": 5000},
    },
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a config file: JSON, or TOML when the name ends in ``.toml``.

    Returns the entries as a dict; unknown entries raise :class:`ValueError` naming them
    and the allowed ones.
    """
    return read_config_file(path, [f.name for f in fields(PowerSpectrumConfig)])


# (field, argparse type, nargs, help) of every flag but the engine's.
_FLAGS: list[tuple[str, Any, str | None, str]] = [
    ("out", str, None, "run directory"),
    ("seeds", int, "+", "seeds of the main models"),
    ("encodings", str, "+", "input encodings: circle, raw (the first is the headline)"),
    ("k_max", int, None, "highest frequency of the training functions"),
    ("k_fin", int, None, "number of predicted frequencies"),
    ("set_size", int, None, "samples per function N in training"),
    ("batch_size", int, None, "functions per step"),
    ("depth", int, None, "equivariant layers of the main model"),
    ("width", int, None, "channels of the main model"),
    ("steps", int, None, "optimiser steps per main model"),
    ("lr", float, None, "Adam learning rate"),
    ("lr_schedule", str, None, "constant or cosine"),
    ("test_sets", int, None, "functions in the test set"),
    ("test_seed", int, None, "seed of the test sets"),
    ("lstsq_k", int, None, "frequencies of the least-squares baseline"),
    ("grid_depths", int, "+", "depths of figures 2-3"),
    ("grid_widths", int, "+", "widths of figures 2-3"),
    ("grid_seeds", int, "+", "seeds per grid cell"),
    ("grid_steps", int, None, "steps per grid model"),
    ("grid_encoding", str, None, "encoding of the grid models"),
    ("sweep_sizes", int, "+", "set sizes of figure 4"),
    ("sweep_sets", int, None, "functions per size in figure 4"),
    ("noise_k_max", int, None, "training k_max of figure 5"),
    ("noise_k_fin", int, None, "predicted frequencies of figure 5"),
    ("noise_test_k_max", int, "+", "test k_max values of figure 5"),
    ("noise_depth", int, None, "depth of the figure-5 model"),
    ("noise_width", int, None, "width of the figure-5 model"),
    ("noise_steps", int, None, "steps of the figure-5 model (0 skips it)"),
    ("noise_sets", int, None, "test functions per k_max in figure 5"),
    ("other_encoding_seeds", int, None, "seeds of the other encodings (0: all)"),
    ("workers", int, None, "training runs at once, one process each"),
    ("threads", int, None, "torch CPU threads per process (0: torch's choice)"),
]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--preset``, ``--config``, ``--resume``, ``--[no-]figures`` and one flag per
    setting of :class:`PowerSpectrumConfig` (defaults ``None``: "not given")."""
    parser.add_argument(
        "--preset",
        choices=[p.value for p in Preset],
        default=None,
        help="starting values: quick (minutes on a CPU) or paper (the seed's scale)",
    )
    parser.add_argument("--config", default=None, help="JSON or TOML file of settings")
    parser.add_argument(
        "--resume", action="store_const", const=True, default=None, help="continue a run"
    )
    parser.add_argument(
        "--figures",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw figures 1-5 (default: yes)",
    )
    group = parser.add_argument_group("study settings")
    for name, kind, nargs, text in _FLAGS:
        group.add_argument(
            "--" + name.replace("_", "-"), type=kind, nargs=nargs, default=None, help=text
        )


def config_from_args(args: argparse.Namespace) -> PowerSpectrumConfig:
    """Resolve preset < config file < flags into a :class:`PowerSpectrumConfig`."""
    from ..training import engine_settings_from_args

    file_values = load_config_file(args.config) if args.config else {}
    preset = args.preset or file_values.get("preset") or Preset.QUICK.value
    preset = resolve_option(preset, Preset, name="preset").value
    values: dict[str, Any] = {**PRESETS[preset], **file_values, "preset": preset}
    for name in ("resume", "figures", *(flag[0] for flag in _FLAGS)):
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    for name in ("threads", "other_encoding_seeds"):
        if values.get(name) == 0:
            values[name] = None
    base = PowerSpectrumConfig(**values)
    engine = engine_settings_from_args(args, base.engine_settings())
    defaults = type(engine)()
    values["engine"] = {
        key: value for key, value in asdict(engine).items() if value != getattr(defaults, key)
    }
    return PowerSpectrumConfig(**values)
