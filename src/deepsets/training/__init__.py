"""Training engine (Lightning): module, streaming data, atomic checkpoints, callbacks.

Needs the ``train`` extra: ``pip install "deepsets[train]"``. Nothing in the core
library imports this package.
"""

from .callbacks import InterruptAt, StepProgressBar
from .checkpoint import AtomicCheckpointIO, load_checkpoint, save_checkpoint_atomic
from .data import StepStream, StreamDataModule
from .engine import EngineSettings, FitResult, fit_stream, load_model_weights
from .module import SetModelModule

__all__ = [
    "AtomicCheckpointIO",
    "EngineSettings",
    "FitResult",
    "InterruptAt",
    "SetModelModule",
    "StepProgressBar",
    "StepStream",
    "StreamDataModule",
    "fit_stream",
    "load_checkpoint",
    "load_model_weights",
    "save_checkpoint_atomic",
]
