"""One function that trains a set model on a stream with Lightning: :func:`fit_stream`.

It wires the pieces every task needs: device selection, the step progress bar, CSV or
TensorBoard logging, DDP, atomic ``weights_only`` checkpoints and exact resumption.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from .callbacks import StepProgressBar
from .checkpoint import AtomicCheckpointIO, load_checkpoint
from .data import BatchSampler, StreamDataModule
from .module import SetModelModule

__all__ = ["EngineSettings", "FitResult", "fit_stream"]

LOGGERS = ("csv", "tensorboard", "none")


@dataclass
class EngineSettings:
    """How to train (not what): hardware, logging, checkpoints.

    Attributes:
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``, …).
        devices: devices per node (``"auto"`` or a count).
        num_nodes: machines for multi-node DDP.
        strategy: ``"auto"``, ``"ddp"``, ``"ddp_spawn"``, …
        logger: ``"csv"`` (default), ``"tensorboard"`` or ``"none"``.
        checkpoint_every: optimiser steps between checkpoints (``last.ckpt``).
        progress: show the progress bar.
        precision: Lightning precision flag (``"32-true"``, ``"bf16-mixed"``, …).
    """

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    logger: str = "csv"
    checkpoint_every: int = 1000
    progress: bool = True
    precision: str = "32-true"


@dataclass
class FitResult:
    """What :func:`fit_stream` returns."""

    global_step: int
    checkpoint: Path
    is_global_zero: bool
    resumed_from: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _logger(kind: str, root: Path, name: str) -> Logger | bool:
    if kind not in LOGGERS:
        raise ValueError(f"logger must be one of {LOGGERS}; got {kind!r}")
    if kind == "csv":
        return CSVLogger(root / "logs", name=name, version="")
    if kind == "tensorboard":
        return TensorBoardLogger(root / "logs", name=name, version="")
    return False


def fit_stream(
    module: SetModelModule,
    sample: BatchSampler,
    *,
    max_steps: int,
    out_dir: str | os.PathLike[str],
    name: str,
    settings: EngineSettings | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train ``module`` for ``max_steps`` optimiser steps on ``sample(step, rank, device)``.

    Checkpoints go to ``out_dir/checkpoints/name/last.ckpt`` (atomically). With
    ``resume=True`` and an existing ``last.ckpt``, training continues from it and ends
    with the same weights as an uninterrupted run; a finished run is not trained again.

    Returns:
        :class:`FitResult`; the trained weights are in ``module`` on every rank.
    """
    settings = settings or EngineSettings()
    root = Path(out_dir)
    checkpoint_dir = root / "checkpoints" / name
    last = checkpoint_dir / "last.ckpt"
    resume_from = last if resume and last.exists() else None
    checkpointing = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="last",
        every_n_train_steps=max(1, settings.checkpoint_every),
        save_top_k=1,
        save_last=False,
        enable_version_counter=False,
    )
    all_callbacks: list[Callback] = [checkpointing, *callbacks]
    if settings.progress:
        all_callbacks.append(StepProgressBar(description=name))
    for noisy in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    trainer = Trainer(
        accelerator=settings.accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=settings.strategy,
        precision=settings.precision,  # type: ignore[arg-type]
        max_steps=max_steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=_logger(settings.logger, root, name),
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        use_distributed_sampler=False,
        log_every_n_steps=50,
        default_root_dir=root,
    )
    datamodule = StreamDataModule(sample, max_steps=max_steps)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*IterableDataset.*")
        warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
    if not last.exists() or _saved_step(last) != trainer.global_step:
        trainer.save_checkpoint(last)
    return FitResult(
        global_step=trainer.global_step,
        checkpoint=last,
        is_global_zero=trainer.is_global_zero,
        resumed_from=resume_from,
    )


def _saved_step(path: Path) -> int:
    try:
        return int(load_checkpoint(path, map_location="cpu").get("global_step", -1))
    except (OSError, RuntimeError, ValueError):
        return -1


def load_model_weights(model: torch.nn.Module, checkpoint: str | os.PathLike[str]) -> None:
    """Load the ``model.``-prefixed weights of a :class:`SetModelModule` checkpoint."""
    state = load_checkpoint(checkpoint, map_location="cpu")["state_dict"]
    prefix = "model."
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
