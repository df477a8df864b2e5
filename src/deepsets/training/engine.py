"""One function that trains a set model on a stream with Lightning: :func:`fit_stream`.

It wires the pieces every task needs: device selection, the step progress bar (steps,
loss, ETA), CSV (default) or TensorBoard logging, DDP over processes and machines,
atomic ``weights_only`` checkpoints and exact resumption. :func:`add_engine_arguments`
and :func:`engine_settings_from_args` give every task's command line the same flags.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.accelerators import AcceleratorRegistry
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.strategies import StrategyRegistry

from .._validation import resolve_option
from .callbacks import StepProgressBar
from .checkpoint import AtomicCheckpointIO, load_checkpoint
from .data import BatchSampler, StreamDataModule
from .module import SetModelModule

__all__ = [
    "LOGGERS",
    "EngineSettings",
    "FitResult",
    "LoggerKind",
    "add_engine_arguments",
    "engine_settings_from_args",
    "fit_stream",
    "load_model_weights",
]


class LoggerKind(str, Enum):
    """Where :func:`fit_stream` logs the training loss."""

    CSV = "csv"
    TENSORBOARD = "tensorboard"
    NONE = "none"


LOGGERS = tuple(member.value for member in LoggerKind)


def _accelerators() -> list[str]:
    return sorted({"auto", "gpu", *AcceleratorRegistry.available_accelerators()})


def _strategies() -> list[str]:
    return ["auto", *StrategyRegistry.available_strategies()]


def _count(value: object, *, name: str, allow_auto: bool = False) -> int | str:
    if allow_auto and value == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "'auto' or a positive int" if allow_auto else "a positive int"
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return value


@dataclass
class EngineSettings:
    """How to train (not what): hardware, logging, checkpoints.

    Every field is checked when the settings are made; a bad value raises
    :class:`ValueError` naming the field, the value and the allowed choices.

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

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    logger: str = "csv"
    checkpoint_every: int = 1000
    progress: bool = True
    precision: str = "32-true"
    log_every_n_steps: int = 50

    def __post_init__(self) -> None:
        if self.accelerator not in _accelerators():
            raise ValueError(
                f"accelerator must be one of {', '.join(map(repr, _accelerators()))}; "
                f"got {self.accelerator!r}"
            )
        if self.strategy not in _strategies():
            raise ValueError(
                f"strategy must be one of {', '.join(map(repr, _strategies()))}; "
                f"got {self.strategy!r}"
            )
        self.devices = _count(self.devices, name="devices", allow_auto=True)
        self.num_nodes = int(_count(self.num_nodes, name="num_nodes"))
        self.checkpoint_every = int(_count(self.checkpoint_every, name="checkpoint_every"))
        self.log_every_n_steps = int(_count(self.log_every_n_steps, name="log_every_n_steps"))
        self.logger = resolve_option(self.logger, LoggerKind, name="logger").value
        if not isinstance(self.progress, bool):
            raise TypeError(f"progress must be a bool; got {type(self.progress).__name__}")

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> EngineSettings:
        """Settings from a plain dict (a config file's ``engine`` table); unknown keys are a
        :class:`ValueError` listing the allowed ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"engine has unknown settings {unknown}; allowed: {sorted(known)}")
        return cls(**settings)


@dataclass
class FitResult:
    """What :func:`fit_stream` returns.

    Attributes:
        global_step: optimiser steps done (``max_steps`` after a finished run).
        checkpoint: the ``last.ckpt`` holding the final state.
        is_global_zero: whether this process is DDP rank 0 (the one that should write
            reports); ``True`` without DDP.
        resumed_from: the checkpoint training continued from, if any.
        extra: ``loss`` (the last logged training loss) and ``world_size``.
    """

    global_step: int
    checkpoint: Path
    is_global_zero: bool
    resumed_from: Path | None = None
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
    steps = int(_count(max_steps, name="max_steps"))
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
    checkpointing = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="last",
        every_n_train_steps=settings.checkpoint_every,
        save_top_k=1,
        save_last=False,
        enable_version_counter=False,
    )
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
            logger=_logger(settings.logger, root, name),
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


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the :class:`EngineSettings` flags to a task's parser (group "engine").

    Flags: ``--accelerator``, ``--devices``, ``--num-nodes``, ``--strategy``,
    ``--logger``, ``--checkpoint-every``, ``--precision``, ``--no-progress``. Their
    defaults are ``None`` ("not given"), so a config file can fill them;
    :func:`engine_settings_from_args` resolves them.
    """
    group = parser.add_argument_group("engine (Lightning)")
    group.add_argument("--accelerator", default=None, help="auto (default), cpu, gpu, ...")
    group.add_argument("--devices", default=None, help="devices (processes) per node: auto or N")
    group.add_argument("--num-nodes", type=int, default=None, help="machines for multi-node DDP")
    group.add_argument("--strategy", default=None, help="auto (default), ddp, ddp_spawn, ...")
    group.add_argument("--logger", default=None, help=f"one of {', '.join(LOGGERS)} (csv)")
    group.add_argument(
        "--checkpoint-every", type=int, default=None, help="steps between checkpoints"
    )
    group.add_argument("--precision", default=None, help="Lightning precision (32-true)")
    group.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        default=None,
        help="hide the progress bar",
    )


_ENGINE_FLAGS = (
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
    "logger",
    "checkpoint_every",
    "precision",
    "progress",
)


def engine_settings_from_args(
    args: argparse.Namespace, base: EngineSettings | None = None
) -> EngineSettings:
    """The :class:`EngineSettings` of ``base`` (or the defaults) with the given flags set."""
    values = dict(vars(base or EngineSettings()))
    for key in _ENGINE_FLAGS:
        given = getattr(args, key, None)
        if given is not None:
            values[key] = given
    return EngineSettings(**values)
