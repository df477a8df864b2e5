"""Checkpoint IO that never leaves a half-written file and never unpickles code.

* **Atomic writes**: a checkpoint is written to a temporary file in the target's own
  directory, flushed and ``fsync``-ed, then moved over the target with
  :func:`os.replace`, which is atomic on POSIX and Windows. A crash mid-write leaves the
  previous checkpoint intact and no partial file behind.
* **Safe loads**: files are read with ``torch.load(weights_only=True)``: only tensors,
  containers, numbers and strings are accepted, so opening a checkpoint cannot run code.
  This also holds for Lightning's own resume path (``Trainer.fit(ckpt_path=…)``), which
  reads through :class:`AtomicCheckpointIO` even when asked for ``weights_only=False``.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "load_checkpoint", "save_checkpoint_atomic"]


def save_checkpoint_atomic(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``checkpoint`` to ``path`` atomically (temp file + ``os.replace``).

    Either the whole new file is at ``path`` afterwards, or (after an error or a crash at
    any point) the old file is untouched and no temporary file is left behind.

    Args:
        checkpoint: the dict to save (tensors, containers, numbers, strings).
        path: the target file; missing parent directories are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: if ``checkpoint`` is not a dict.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint must be a dict; got {type(checkpoint).__name__}")
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
    """Load a checkpoint with ``torch.load(weights_only=True)``: no code is unpickled.

    Args:
        path: the checkpoint file.
        map_location: as for :func:`torch.load` (e.g. ``"cpu"``).

    Returns:
        The checkpoint dict.

    Raises:
        pickle.UnpicklingError: if the file holds anything but tensors, containers,
            numbers and strings (e.g. a pickled object whose loading would run code).
        ValueError: if the file holds something other than a dict.
        FileNotFoundError: if ``path`` does not exist.
    """
    try:
        loaded = torch.load(Path(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise pickle.UnpicklingError(
            f"refusing to load checkpoint {str(path)!r}: it holds objects other than "
            f"tensors, containers, numbers and strings (loaded with weights_only=True). "
            f"torch said: {error}"
        ) from error
    if not isinstance(loaded, dict):
        raise ValueError(f"checkpoint {str(path)!r} must hold a dict; got {type(loaded).__name__}")
    return loaded


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` plugin: atomic saves, ``weights_only=True`` loads.

    Pass it as ``Trainer(plugins=[AtomicCheckpointIO()])``; every checkpoint the trainer
    writes (``ModelCheckpoint``, ``trainer.save_checkpoint``) goes through
    :func:`save_checkpoint_atomic`, and every checkpoint it reads (``ckpt_path=…`` on
    resume) through :func:`load_checkpoint`. A ``weights_only=False`` request from
    Lightning is ignored: the load is always the safe one.
    """

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike[str],
        storage_options: Any | None = None,
    ) -> None:
        """Save atomically; ``storage_options`` are not supported (must be ``None``)."""
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
        """Load with ``weights_only=True`` whatever ``weights_only`` says."""
        return load_checkpoint(path, map_location=map_location)
