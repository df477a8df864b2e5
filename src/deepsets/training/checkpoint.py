"""Checkpoint IO that never leaves a half-written file and never unpickles code.

* **Atomic writes**: the checkpoint is written to a temporary file in the target's own
  directory, flushed to disk, then moved over the target with :func:`os.replace`, which
  is atomic on POSIX and Windows. A crash mid-write leaves the previous checkpoint intact
  and no partial file behind.
* **Safe loads**: files are read with ``torch.load(weights_only=True)``: only tensors,
  containers, numbers and strings are accepted, so a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "load_checkpoint", "save_checkpoint_atomic"]


def save_checkpoint_atomic(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``checkpoint`` to ``path`` atomically (temp file + ``os.replace``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(checkpoint, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = None) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` (no code is unpickled)."""
    loaded = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(loaded, dict):
        raise ValueError(f"checkpoint {str(path)!r} must hold a dict; got {type(loaded).__name__}")
    return loaded


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` plugin: atomic saves, ``weights_only`` loads.

    Pass it as ``Trainer(plugins=[AtomicCheckpointIO()])``; every checkpoint the trainer
    writes (``ModelCheckpoint``, ``trainer.save_checkpoint``) then goes through it.
    """

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike[str],
        storage_options: Any | None = None,
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                "AtomicCheckpointIO does not take storage_options; got "
                f"{type(storage_options).__name__}"
            )
        save_checkpoint_atomic(checkpoint, path)

    def load_checkpoint(
        self,
        path: str | os.PathLike[str],
        map_location: Any | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if weights_only is False:
            raise ValueError("AtomicCheckpointIO loads with weights_only=True only; got False")
        return load_checkpoint(path, map_location=map_location)
