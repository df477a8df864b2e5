"""One function that trains a set model on a stream with Lightning: :func:`fit_stream`.

It wires the pieces every task needs: device selection, the step progress bar (steps,
loss, ETA), CSV (default) or TensorBoard logging, DDP over processes and machines,
atomic ``weights_only`` checkpoints and exact resumption. :mod:`deepsets.training.settings`
holds the settings (:class:`EngineSettings`) and their command-line flags.
"""

from __future__ import annotations

import csv
import importlib.util
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

from .._validation import check_dim, resolve_option
from .callbacks import StepProgressBar
from .checkpoint import AtomicCheckpointIO, load_checkpoint
from .data import BatchSampler, StreamDataModule
from .module import SetModelModule
from .settings import LOGGERS, EngineSettings, LoggerKind

__all__ = [
    "LOGGERS",
    "EngineSettings",
    "FitResult",
    "LoggerKind",
    "fit_stream",
    "load_model_weights",
]


@dataclass
class FitResult:
    """What :func:`fit_stream` returns.

    Attributes:
        global_step: optimiser steps done (``max_steps`` after a finished run).
        checkpoint: the ``last.ckpt`` holding the final state.
        is_global_zero: whether this process is DDP rank 0 (the one that should write
            reports); ``True`` without DDP.
        resumed_from: the checkpoint training continued from, if any.
        start_step: the optimiser step training started from (that checkpoint's; else 0).
        extra: ``loss`` (the last logged training loss) and ``world_size``.
    """

    global_step: int
    checkpoint: Path
    is_global_zero: bool
    resumed_from: Path | None = None
    start_step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _logger(kind: str, root: Path, name: str) -> Logger | bool:
    resolved = resolve_option(kind, LoggerKind, name="logger")
    if resolved is LoggerKind.CSV:
        return CSVLogger(root / "logs", name=name, version="")
    if resolved is LoggerKind.TENSORBOARD:
        if not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise ImportError(
                "logger='tensorboard' needs the tensorboard package: "
                'pip install "deepsets[tensorboard]"'
            )
        return TensorBoardLogger(root / "logs", name=name, version="")
    return False


def _keep_earlier_rows(logger: CSVLogger, *, before_step: int) -> None:
    """Put back the logged rows of the steps before ``before_step`` when a run resumes.

    Lightning's CSV writer deletes ``metrics.csv`` when it starts, which would leave a
    resumed run with the losses since its checkpoint only. The rows of the checkpoint's
    steps are kept; later ones (logged after the checkpoint, before the interruption) are
    dropped, since the resumed run logs those steps again.
    """
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        keys = list(reader.fieldnames or [])
        rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) < before_step]
    writer = logger.experiment  # Lightning's writer: it deletes the file as it starts
    if not hasattr(writer, "metrics_keys"):  # not rank zero: nothing is written here
        return
    with path.open("w", newline="") as stream:
        table = csv.DictWriter(stream, fieldnames=keys)
        table.writeheader()
        table.writerows(rows)
    writer.metrics_keys = keys  # new rows are appended under this header


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

    The batch of step ``s`` on DDP rank ``r`` is ``sample(s, r, device)``, drawn on the
    training device; ``sample`` must be a pure function of its arguments. Under DDP every
    rank draws its own batch and gradients are averaged, so the effective batch is
    ``world_size`` times the sampler's.

    Checkpoints go to ``out_dir/checkpoints/name/last.ckpt`` every
    ``settings.checkpoint_every`` steps and at the end, written atomically and read back
    with ``weights_only=True``. With ``resume=True`` and an existing ``last.ckpt``,
    training continues from it (model, optimiser, schedule, step counter) with the
    batches an uninterrupted run would have drawn, so it ends with the same weights; a
    finished run is not trained again. Losses are logged to ``out_dir/logs/name``.

    Shapes:
        - ``sample(step, rank, device)`` returns ``(features, target)`` or
          ``(features, target, mask)`` as :class:`SetModelModule` takes them:
          ``(B, N, d)``, ``(B, K)`` (or ``(B,)`` class indices), ``(B, N)``

    Args:
        module: the model, loss and optimiser.
        sample: ``(step, rank, device) -> batch``.
        max_steps: total optimiser steps (including those before a resume).
        out_dir: the run directory.
        name: the run's name inside ``out_dir`` (a plain file name).
        settings: hardware, logging and checkpoint settings (defaults: see
            :class:`EngineSettings`).
        resume: continue from ``last.ckpt`` if it exists.
        callbacks: extra Lightning callbacks.

    Returns:
        :class:`FitResult`; the trained weights are in ``module`` on every rank.

    Raises:
        ValueError: for a non-positive ``max_steps`` or a ``name`` that is not a plain
            file name.
        pickle.UnpicklingError: when resuming from a checkpoint that holds pickled objects.
    """
    settings = settings or EngineSettings()
    if not isinstance(settings, EngineSettings):
        raise TypeError(f"settings must be EngineSettings; got {type(settings).__name__}")
    if not isinstance(module, SetModelModule):
        raise TypeError(f"module must be a SetModelModule; got {type(module).__name__}")
    steps = check_dim(max_steps, name="max_steps")
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or (os.sep in name)
    ):
        raise ValueError(f"name must be a plain, non-empty file name; got {name!r}")
    root = Path(out_dir)
    checkpoint_dir = root / "checkpoints" / name
    last = checkpoint_dir / "last.ckpt"
    resume_from = last if resume and last.exists() else None
    start_step = int(load_checkpoint(resume_from)["global_step"]) if resume_from else 0
    checkpointing = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="last",
        every_n_train_steps=settings.checkpoint_every,
        save_top_k=1,
        save_last=False,
        enable_version_counter=False,
    )
    logger = _logger(settings.logger, root, name)
    all_callbacks: list[Callback] = [checkpointing, *callbacks]
    if settings.progress:
        all_callbacks.append(StepProgressBar(description=name))
    for noisy in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*IterableDataset.*")
        warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended.*")
        warnings.filterwarnings("ignore", ".*exists and is not empty.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        if resume_from is not None and isinstance(logger, CSVLogger):
            _keep_earlier_rows(logger, before_step=start_step)
        trainer = Trainer(
            accelerator=settings.accelerator,
            devices=settings.devices,
            num_nodes=settings.num_nodes,
            strategy=settings.strategy,
            precision=settings.precision,  # type: ignore[arg-type]
            max_steps=steps,
            max_epochs=-1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=logger,
            callbacks=all_callbacks,
            plugins=[AtomicCheckpointIO()],
            enable_progress_bar=settings.progress,
            enable_model_summary=False,
            use_distributed_sampler=False,
            log_every_n_steps=min(settings.log_every_n_steps, steps),
            default_root_dir=root,
        )
        datamodule = StreamDataModule(sample, max_steps=steps)
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        # Every rank takes this branch (the save is collective): the final state is always
        # in last.ckpt, whatever checkpoint_every was.
        trainer.save_checkpoint(last)
    loss = trainer.callback_metrics.get("loss")
    return FitResult(
        global_step=trainer.global_step,
        checkpoint=last,
        is_global_zero=trainer.is_global_zero,
        resumed_from=resume_from,
        start_step=start_step,
        extra={
            "loss": float(loss) if loss is not None else None,
            "world_size": trainer.world_size,
        },
    )


def load_model_weights(model: torch.nn.Module, checkpoint: str | os.PathLike[str]) -> None:
    """Load the ``model.``-prefixed weights of a :class:`SetModelModule` checkpoint.

    The file is read with ``weights_only=True`` (see :func:`load_checkpoint`).
    """
    state = load_checkpoint(checkpoint, map_location="cpu")["state_dict"]
    prefix = "model."
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
