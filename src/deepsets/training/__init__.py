"""Training engine (Lightning): module, streaming data, atomic checkpoints, callbacks.

Needs the ``train`` extra: ``pip install "deepsets[train]"``. Nothing in the core
library imports this package.
"""

from .callbacks import InterruptAt, StepProgressBar, StepReporter
from .checkpoint import AtomicCheckpointIO, load_checkpoint, save_checkpoint_atomic
from .data import StepStream, StreamDataModule
from .engine import (
    LOGGERS,
    EngineSettings,
    FitResult,
    LoggerKind,
    add_engine_arguments,
    engine_settings_from_args,
    fit_stream,
    load_model_weights,
)
from .module import LOSSES, SCHEDULES, Loss, Schedule, SetModelModule

__all__ = [
    "LOGGERS",
    "LOSSES",
    "SCHEDULES",
    "AtomicCheckpointIO",
    "EngineSettings",
    "FitResult",
    "InterruptAt",
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
