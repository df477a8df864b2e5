"""Training engine (Lightning): module, streaming data, atomic checkpoints, callbacks.

Needs the ``train`` extra: ``pip install "deepsets[train]"``. Nothing in the core
library imports this package.

The names below are loaded on first use, so ``deepsets.training.settings`` (the engine's
settings and flags) can be imported without importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .callbacks import InterruptAt, KeepBest, StepProgressBar, StepReporter
    from .checkpoint import AtomicCheckpointIO, load_checkpoint, save_checkpoint_atomic
    from .data import StepStream, StreamDataModule
    from .engine import FitResult, fit_stream, load_model_weights
    from .module import LOSSES, SCHEDULES, Loss, Schedule, SetModelModule
    from .settings import (
        LOGGERS,
        EngineSettings,
        LoggerKind,
        add_engine_arguments,
        engine_settings_from_args,
    )

# public name -> the submodule that defines it
_HOMES = {
    "InterruptAt": "callbacks",
    "KeepBest": "callbacks",
    "StepProgressBar": "callbacks",
    "StepReporter": "callbacks",
    "AtomicCheckpointIO": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint_atomic": "checkpoint",
    "StepStream": "data",
    "StreamDataModule": "data",
    "FitResult": "engine",
    "fit_stream": "engine",
    "load_model_weights": "engine",
    "LOSSES": "module",
    "SCHEDULES": "module",
    "Loss": "module",
    "Schedule": "module",
    "SetModelModule": "module",
    "LOGGERS": "settings",
    "EngineSettings": "settings",
    "LoggerKind": "settings",
    "add_engine_arguments": "settings",
    "engine_settings_from_args": "settings",
}

__all__ = [
    "LOGGERS",
    "LOSSES",
    "SCHEDULES",
    "AtomicCheckpointIO",
    "EngineSettings",
    "FitResult",
    "InterruptAt",
    "KeepBest",
    "LoggerKind",
    "Loss",
    "Schedule",
    "SetModelModule",
    "StepProgressBar",
    "StepReporter",
    "StepStream",
    "StreamDataModule",
    "add_engine_arguments",
    "engine_settings_from_args",
    "fit_stream",
    "load_checkpoint",
    "load_model_weights",
    "save_checkpoint_atomic",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
