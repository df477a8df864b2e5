"""How to train (not what): :class:`EngineSettings`, and the same settings as flags.

This module needs neither Lightning nor torch at import time (Lightning's registries are
read when settings are checked), so a command line can list its flags quickly.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from .._settings import add_flags, check_fields, check_known, flag_values, setting

__all__ = [
    "LOGGERS",
    "EngineSettings",
    "LoggerKind",
    "add_engine_arguments",
    "engine_overrides",
    "engine_settings_from_args",
]


class LoggerKind(str, Enum):
    """Where :func:`~deepsets.training.fit_stream` logs the training loss."""

    CSV = "csv"
    TENSORBOARD = "tensorboard"
    NONE = "none"


LOGGERS = tuple(member.value for member in LoggerKind)


def _accelerators() -> list[str]:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return sorted({"auto", "gpu", *AcceleratorRegistry.available_accelerators()})


def _strategies() -> list[str]:
    from lightning.pytorch.strategies import StrategyRegistry

    return ["auto", *StrategyRegistry.available_strategies()]


def _count(value: object, *, name: str) -> int | str:
    """``"auto"`` or a positive int (digits in a string are read as an int)."""
    if value == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be 'auto' or a positive int; got {value!r}")
    return value


def _one_of(value: str, allowed: list[str], *, name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


@dataclass
class EngineSettings:
    """How to train (not what): hardware, logging, checkpoints.

    Every field is checked when the settings are made (by the same field validator as the
    experiments' configurations): a value of the wrong type raises :class:`TypeError`, a
    bad value :class:`ValueError`, naming the field, the value and the allowed choices.

    Attributes:
        accelerator: Lightning accelerator: ``"auto"`` (a GPU if there is one),
            ``"cpu"``, ``"gpu"``/``"cuda"``, ``"mps"``, ``"tpu"``.
        devices: devices per node: ``"auto"`` or a count. With ``accelerator="cpu"``,
            ``devices=n`` runs ``n`` processes.
        num_nodes: machines for multi-node DDP (launch one copy of the command per node
            with ``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK`` and ``WORLD_SIZE`` set,
            or under SLURM/torchelastic).
        strategy: ``"auto"``, ``"ddp"``, ``"ddp_spawn"``, … (Lightning's registry).
        logger: ``"csv"`` (default), ``"tensorboard"`` or ``"none"``.
        checkpoint_every: optimiser steps between checkpoints (``last.ckpt``).
        progress: show the progress bar.
        precision: Lightning precision flag (``"32-true"``, ``"bf16-mixed"``, …).
        log_every_n_steps: optimiser steps between logged losses.
    """

    accelerator: str = setting("auto", help="auto (default), cpu, gpu, ...")
    devices: int | str = setting(
        "auto", help="devices (processes) per node: auto or N", check=False
    )
    num_nodes: int = setting(1, help="machines for multi-node DDP", minimum=1)
    strategy: str = setting("auto", help="auto (default), ddp, ddp_spawn, ...")
    logger: str = setting("csv", help=f"one of {', '.join(LOGGERS)} (csv)", choices=LoggerKind)
    checkpoint_every: int = setting(1000, help="steps between checkpoints", minimum=1)
    progress: bool = setting(True, help="show the progress bar (default: yes)")
    precision: str = setting("32-true", help="Lightning precision (32-true)")
    log_every_n_steps: int = setting(50, help="steps between logged losses", minimum=1, cli=False)

    def __post_init__(self) -> None:
        check_fields(self)
        _one_of(self.accelerator, _accelerators(), name="accelerator")
        _one_of(self.strategy, _strategies(), name="strategy")
        self.devices = _count(self.devices, name="devices")

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> EngineSettings:
        """Settings from a plain dict (a config file's ``engine`` table); unknown keys are a
        :class:`ValueError` listing the allowed ones."""
        check_known(settings, cls, what="engine has unknown settings")
        return cls(**settings)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the :class:`EngineSettings` flags to a task's parser (group "engine").

    Flags: ``--accelerator``, ``--devices``, ``--num-nodes``, ``--strategy``,
    ``--logger``, ``--checkpoint-every``, ``--[no-]progress``, ``--precision``. Their
    defaults are ``None`` ("not given"), so a config file can fill them;
    :func:`engine_settings_from_args` resolves them.
    """
    add_flags(parser.add_argument_group("engine (Lightning)"), EngineSettings)


def engine_settings_from_args(
    args: argparse.Namespace, base: EngineSettings | None = None
) -> EngineSettings:
    """The :class:`EngineSettings` of ``base`` (or the defaults) with the given flags set."""
    values = dict(vars(base or EngineSettings()))
    values.update(flag_values(args, EngineSettings))
    return EngineSettings(**values)


def engine_overrides(settings: EngineSettings) -> dict[str, Any]:
    """The fields of ``settings`` that differ from the defaults (what a config file needs)."""
    defaults = asdict(EngineSettings())
    return {key: value for key, value in asdict(settings).items() if value != defaults[key]}
