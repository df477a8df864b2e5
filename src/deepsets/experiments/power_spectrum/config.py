"""Settings of the power-spectrum experiment: one dataclass and two presets.

Every setting is a field of :class:`PowerSpectrumConfig`, a command-line flag
(``--field-name``) and a config-file entry (JSON, or TOML by the ``.toml`` suffix).
Values are resolved in this order, later ones winning: the preset, the config file, the
flags (:mod:`deepsets.experiments._config`).
"""

from __future__ import annotations

import argparse
from copy import deepcopy
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any

from ..._settings import check_fields, check_known, setting
from .._config import ExperimentConfig, read_config_file
from .._config import add_config_arguments as _add_config_arguments
from .._config import config_from_args as _config_from_args
from .data import Design, Encoding, RegimeName

__all__ = [
    "PRESETS",
    "DesignSettings",
    "PowerSpectrumConfig",
    "Preset",
    "add_config_arguments",
    "config_from_args",
    "design_settings",
    "load_config_file",
]


class _Schedule(str, Enum):
    """Learning-rate schedules the experiment offers (a subset of the engine's)."""

    CONSTANT = "constant"
    COSINE = "cosine"


class Preset(str, Enum):
    """Named starting points of :class:`PowerSpectrumConfig`."""

    QUICK = "quick"
    FULL = "full"
    PAPER = "paper"


def _ints(*values: int) -> Any:
    return lambda: list(values)


# Training budgets of the two designs per regime (the research behind them: CPU-seconds
# per model and the MSE they reach are in docs/study/power-spectrum.md).
STRUCTURED_QUICK: dict[str, Any] = {
    "lr": 3e-3,
    "hidden": [32, 32],
    "blog": {"steps": 100, "num_frequencies": 8},
    "noisy": {"steps": 300, "num_frequencies": 8},
    "underdetermined": {"steps": 300, "num_frequencies": 24},
    "aliasing": {"steps": 100, "batch_size": 32, "num_frequencies": 64},
}
STRUCTURED_FULL: dict[str, Any] = {
    "lr": 3e-3,
    "hidden": [32, 32],
    "blog": {"steps": 300, "num_frequencies": 8},
    "noisy": {"steps": 600, "num_frequencies": 8},
    "underdetermined": {"steps": 800, "num_frequencies": 32},
    "aliasing": {"steps": 600, "batch_size": 32, "num_frequencies": 64},
}
GENERIC_QUICK: dict[str, Any] = {
    "lr": 1e-3,
    "batch_size": 128,
    "rho_hidden": [256, 256],
    "blog": {"steps": 2000, "num_frequencies": 4},
    "noisy": {"steps": 2000, "num_frequencies": 4},
    "underdetermined": {"steps": 600, "batch_size": 512, "num_frequencies": 8},
    "aliasing": {"steps": 100, "batch_size": 256, "num_frequencies": 8},
}
# About 4 CPU-minutes per model (one thread). Chosen on the validation draw (one random
# seed): J = 8 beats J = 16 in the underdetermined regime (regret 0.36 against 0.63 at
# 20,000 steps of 128) and a smaller step over more functions wins there (batch 512,
# lr 5e-4: 0.21, 0.17 with SiLU); the aliasing regime is bound by drawing its functions
# (~25 ms per 64), J = 8 (0.13; 0.097 with SiLU) beats J = 16 (0.42). The table of these
# runs is in docs/study/power-spectrum.md.
GENERIC_FULL: dict[str, Any] = {
    "lr": 1e-3,
    "batch_size": 128,
    "rho_hidden": [256, 256],
    "blog": {"steps": 30000, "num_frequencies": 4},
    "noisy": {"steps": 20000, "num_frequencies": 4},
    "underdetermined": {"steps": 11000, "batch_size": 512, "lr": 5e-4, "num_frequencies": 8},
    "aliasing": {"steps": 2000, "batch_size": 256, "num_frequencies": 8},
}


def _scaled(design: dict[str, Any], factor: int) -> dict[str, Any]:
    """``design`` with every regime's ``steps`` times ``factor``."""
    return {
        key: {**value, "steps": value["steps"] * factor} if isinstance(value, dict) else value
        for key, value in design.items()
    }


@dataclass
class DesignSettings:
    """The training budget and size of one design on one regime (resolved by
    :func:`design_settings` from the config's ``generic`` / ``structured`` entries)."""

    steps: int = setting(1000, help="optimiser steps", minimum=1)
    batch_size: int = setting(64, help="functions per step", minimum=1)
    lr: float = setting(3e-3, help="Adam learning rate (peak of the cosine)", above=0)
    num_frequencies: int = setting(8, help="Fourier features J", minimum=1)
    hidden: list[int] = setting(
        default_factory=_ints(32, 32), help="head widths (structured)", minimum=1
    )
    rho_hidden: list[int] = setting(
        default_factory=_ints(128, 128), help="ρ widths (generic)", minimum=1
    )

    def __post_init__(self) -> None:
        check_fields(self)


def design_settings(design: dict[str, Any], regime: str, *, name: str) -> DesignSettings:
    """The settings of a design on ``regime``: the entry's top-level values, overridden by
    its sub-entry named after the regime, e.g.
    ``{"lr": 3e-3, "aliasing": {"steps": 600, "num_frequencies": 64}}``.

    Raises:
        ValueError: for unknown keys (naming them and the allowed ones) or bad values.
        TypeError: for a regime entry that is not a dict, or values of the wrong type.
    """
    regimes = {r.value for r in RegimeName}
    base = {k: v for k, v in design.items() if k not in regimes}
    override = design.get(regime, {})
    if not isinstance(override, dict):
        raise TypeError(f"{name}[{regime!r}] must be a dict; got {type(override).__name__}")
    check_known(base, DesignSettings, what=f"unknown {name} settings")
    check_known(override, DesignSettings, what=f"unknown {name}[{regime!r}] settings")
    return DesignSettings(**{**base, **override})


@dataclass
class PowerSpectrumConfig(ExperimentConfig):
    """Every setting of ``deepsets power-spectrum`` (the field's help is its flag's help).

    Attributes:
        preset: the preset the other values started from (``quick``, ``full`` or
            ``paper``).
        out: run directory (report, metrics, figures, checkpoints, logs).
        resume: continue interrupted training runs from their ``last.ckpt``.
        seeds: random seeds of the main models (initialisation and training stream).
        encodings: input encodings of the main models; the first is the headline model.
        k_max: highest frequency in the training functions (eq. 4).
        k_fin: frequencies predicted, ``k = 1..k_fin``.
        set_size: samples per function ``N`` during training.
        batch_size: functions per optimiser step (per process).
        depth: equivariant layers ``D`` of the main model.
        width: channels ``K_hide`` of the main model.
        steps: optimiser steps of each main model.
        lr: Adam's learning rate (peak, for the cosine schedule).
        lr_schedule: ``constant`` (as in the blog post) or ``cosine`` (decays to 0).
        test_sets: functions in the fixed test set.
        test_seed: random seed of every test set (the same for all models).
        lstsq_k: frequencies of the least-squares Fourier fit baseline (``≥ k_fin``).
        noise: observation noise σ of the blog-reproduction models' data.
        grid_depths: depths of figures 2–3 (depth × width grid).
        grid_widths: widths of figures 2–3.
        grid_seeds: random seeds per grid cell.
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
            other in this process); two for the two cores of a small machine.
            Must be 1 under multi-process or multi-node DDP.
        threads: torch CPU threads per process (``None``: torch's choice). Small models
            run fastest on one thread per process.
        regimes: the named regimes to run (``data.REGIMES``; empty: none).
        designs: the network designs trained on every regime.
        regime_seeds: random seeds of the regime networks.
        generic: training settings of the generic design (:func:`design_settings`).
        structured: training settings of the structured design.
        valid_sets: validation functions per regime (choose least squares' ``K`` and λ).
        regime_test_sets: functions in each regime's fixed test set.
        ridges: ridge strengths λ of the validated ridge baseline (empty: no ridge row).
        floor_sizes: set sizes ``N`` of figure 6 (underdetermined regime; empty: none).
        floor_sets: test (and validation) functions per size in figure 6.
        figures: draw figures 1–7 (PNG and SVG).
        engine: Lightning settings, the fields of
            :class:`deepsets.training.EngineSettings`.
    """

    preset: str = setting(
        "quick",
        help="starting values: quick (minutes on a CPU), full (~30 min on 2 cores) or paper",
        choices=Preset,
        cli=False,
    )
    out: str = setting("runs/power-spectrum", help="run directory")
    resume: bool = setting(False, help="continue a run")
    seeds: list[int] = setting(
        default_factory=_ints(0), help="random seeds of the main models", nonempty=True
    )
    encodings: list[str] = setting(
        default_factory=lambda: ["circle", "raw"],
        help="input encodings: circle, raw (the first is the headline)",
        choices=Encoding,
        unique=True,
        nonempty=True,
    )
    k_max: int = setting(4, help="highest frequency of the training functions", minimum=1)
    k_fin: int = setting(4, help="number of predicted frequencies", minimum=1)
    set_size: int = setting(128, help="samples per function N in training", minimum=1)
    batch_size: int = setting(64, help="functions per step", minimum=1)
    depth: int = setting(4, help="equivariant layers of the main model", minimum=1)
    width: int = setting(48, help="channels of the main model", minimum=1)
    steps: int = setting(2000, help="optimiser steps per main model", minimum=1)
    lr: float = setting(5e-3, help="Adam learning rate", above=0)
    lr_schedule: str = setting("cosine", help="constant or cosine", choices=_Schedule)
    test_sets: int = setting(1024, help="functions in the test set", minimum=1)
    test_seed: int = setting(2020, help="random seed of the test sets")
    lstsq_k: int = setting(4, help="frequencies of the least-squares baseline", minimum=1)
    noise: float = setting(0.0, help="observation noise sigma of the blog reproduction")
    grid_depths: list[int] = setting(
        default_factory=_ints(1, 4), help="depths of figures 2-3", minimum=1
    )
    grid_widths: list[int] = setting(
        default_factory=_ints(16, 48), help="widths of figures 2-3", minimum=1
    )
    grid_seeds: list[int] = setting(
        default_factory=_ints(0), help="random seeds per grid cell", nonempty=True
    )
    grid_steps: int = setting(500, help="steps per grid model", minimum=1)
    grid_encoding: str = setting("circle", help="encoding of the grid models", choices=Encoding)
    sweep_sizes: list[int] = setting(
        default_factory=_ints(32, 64, 128, 256, 512, 1024, 2048, 4096),
        help="set sizes of figure 4",
        minimum=1,
    )
    sweep_sets: int = setting(256, help="functions per size in figure 4", minimum=1)
    noise_k_max: int = setting(64, help="training k_max of figure 5", minimum=1)
    noise_k_fin: int = setting(8, help="predicted frequencies of figure 5", minimum=1)
    noise_test_k_max: list[int] = setting(
        default_factory=_ints(8, 64, 512), help="test k_max values of figure 5", minimum=1
    )
    noise_depth: int = setting(3, help="depth of the figure-5 model", minimum=1)
    noise_width: int = setting(32, help="width of the figure-5 model", minimum=1)
    noise_steps: int = setting(500, help="steps of the figure-5 model (0 skips it)", minimum=0)
    noise_sets: int = setting(256, help="test functions per k_max in figure 5", minimum=1)
    other_encoding_seeds: int | None = setting(
        1, help="seeds of the other encodings (0: all)", minimum=1, zero_is_none=True
    )
    workers: int = setting(2, help="training runs at once, one process each", minimum=1)
    threads: int | None = setting(
        1, help="torch CPU threads per process (0: torch's choice)", minimum=1, zero_is_none=True
    )
    regimes: list[str] = setting(
        default_factory=lambda: [r.value for r in RegimeName],
        help="regimes: blog, noisy, underdetermined, aliasing",
        choices=RegimeName,
        unique=True,
    )
    designs: list[str] = setting(
        default_factory=lambda: [d.value for d in Design],
        help="network designs on the regimes: generic, structured",
        choices=Design,
        unique=True,
    )
    regime_seeds: list[int] = setting(
        default_factory=_ints(0), help="random seeds of the regime networks", nonempty=True
    )
    generic: dict[str, Any] = setting(
        default_factory=lambda: deepcopy(GENERIC_QUICK), help="generic design", cli=False
    )
    structured: dict[str, Any] = setting(
        default_factory=lambda: deepcopy(STRUCTURED_QUICK), help="structured design", cli=False
    )
    valid_sets: int = setting(256, help="validation functions per regime", minimum=1)
    regime_test_sets: int = setting(512, help="test functions per regime", minimum=1)
    ridges: list[float] = setting(
        default_factory=lambda: [0.01, 0.1, 1.0, 10.0], help="ridge strengths (empty: none)"
    )
    floor_sizes: list[int] = setting(
        default_factory=_ints(8, 16, 32, 64, 128, 256, 512, 1024),
        help="set sizes of figure 6 (empty: none)",
        minimum=1,
    )
    floor_sets: int = setting(128, help="functions per size in figure 6", minimum=1)
    figures: bool = setting(True, help="draw figures 1-7 (default: yes)")
    engine: dict[str, Any] = setting(
        default_factory=dict, help="Lightning settings (EngineSettings fields)", cli=False
    )

    def check(self) -> None:
        """Rules between settings: ``k_fin ≤ k_max``, ``lstsq_k ≥ k_fin``,
        ``noise_k_fin ≤ noise_k_max``, ``noise ≥ 0``, ridges ``> 0``, valid design
        settings, one worker under DDP."""
        if not self.noise >= 0:
            raise ValueError(f"noise must be a number >= 0; got {self.noise!r}")
        if any(not r > 0 for r in self.ridges):
            raise ValueError(f"ridges must all be > 0; got {self.ridges}")
        for design in Design:
            for regime in RegimeName:
                design_settings(getattr(self, design.value), regime.value, name=design.value)
        if self.k_fin > self.k_max:
            raise ValueError(f"k_fin must be <= k_max={self.k_max}; got {self.k_fin}")
        if self.lstsq_k < self.k_fin:
            raise ValueError(f"lstsq_k must be >= k_fin={self.k_fin}; got {self.lstsq_k}")
        if self.noise_k_fin > self.noise_k_max:
            raise ValueError(
                f"noise_k_fin must be <= noise_k_max={self.noise_k_max}; got {self.noise_k_fin}"
            )
        engine = self.engine_settings()
        distributed = engine.num_nodes > 1 or engine.devices not in ("auto", 1)
        if self.workers > 1 and (distributed or engine.strategy not in ("auto",)):
            raise ValueError(
                "workers must be 1 with DDP (strategy/devices/num_nodes); got "
                f"workers={self.workers}, strategy={engine.strategy!r}, "
                f"devices={engine.devices!r}, num_nodes={engine.num_nodes}"
            )


#: Preset values (fields not named keep the dataclass defaults, which are ``quick``'s:
#: minutes on 2 CPU cores, all four regimes with small budgets and one random seed, 512
#: test functions per regime, and a cut reproduction of the blog post).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    # About 30 minutes on 2 CPU cores: the targets with 3 random seeds per design,
    # 1,024 test and 1,024 validation functions per regime, and the blog reproduction at
    # the scale of the earlier quick preset.
    "full": {
        "out": "runs/full",
        "seeds": [0, 1],
        "steps": 7000,
        "grid_seeds": [0, 1],
        "grid_steps": 1000,
        "noise_steps": 1000,
        "sweep_sets": 512,
        "noise_sets": 512,
        "regime_seeds": [0, 1, 2],
        "structured": STRUCTURED_FULL,
        "generic": GENERIC_FULL,
        "valid_sets": 1024,
        "regime_test_sets": 1024,
        "floor_sets": 512,
    },
    # The scale of the blog post's experiments: N = 512, batch 256, Adam with default
    # settings, 1024 test sets, a depth × width grid with several random seeds per cell.
    # Meant for GPUs or several machines.
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
        "regime_seeds": [0, 1, 2, 3, 4],
        "structured": _scaled(STRUCTURED_FULL, 4),
        "generic": _scaled(GENERIC_FULL, 10),
        "valid_sets": 1024,
        "regime_test_sets": 1024,
        "floor_sets": 1024,
        "engine": {"checkpoint_every": 5000},
    },
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a config file: JSON, or TOML when the name ends in ``.toml``.

    Returns the entries as a dict; unknown entries raise :class:`ValueError` naming them
    and the allowed ones.
    """
    return read_config_file(path, [f.name for f in fields(PowerSpectrumConfig)])


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--preset``, ``--config``, one flag per setting of :class:`PowerSpectrumConfig`
    and the engine's flags (defaults ``None``: "not given")."""
    _add_config_arguments(parser, PowerSpectrumConfig, PRESETS)


def config_from_args(args: argparse.Namespace) -> PowerSpectrumConfig:
    """Resolve preset < config file < flags into a :class:`PowerSpectrumConfig`."""
    return _config_from_args(args, PowerSpectrumConfig, PRESETS)
