"""Callbacks: a step-based progress bar and a simulated crash for resume tests."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import TQDMProgressBar

__all__ = ["InterruptAt", "StepProgressBar"]


class StepProgressBar(TQDMProgressBar):
    """A tqdm bar over optimiser steps (``global_step / max_steps``) with loss and ETA.

    Lightning's own bar counts batches of an epoch, which an endless stream does not
    have; this one counts global steps, so it is also right after ``--resume``. The
    postfix shows the latest logged metrics (``loss``); tqdm adds the rate and the ETA.

    Args:
        refresh_rate: redraw every this many steps.
        description: the bar's label.
    """

    def __init__(self, refresh_rate: int = 20, description: str = "train") -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.description = description

    def on_train_epoch_start(self, trainer: Trainer, *_: Any) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps > 0 else None)
        bar.initial = trainer.global_step
        bar.n = trainer.global_step
        bar.set_description(self.description)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        bar = self.train_progress_bar
        step = trainer.global_step
        if step % self.refresh_rate == 0 or step == trainer.max_steps:
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()


class InterruptAt(Callback):
    """Raise :class:`RuntimeError` once ``global_step >= step``, simulating a crash.

    Used to test that ``--resume`` reproduces an uninterrupted run: the last checkpoint
    written before the crash is the one the resumed run starts from.

    Args:
        step: the optimiser step after which to crash (a positive int).
    """

    def __init__(self, step: int) -> None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"step must be a positive int; got {step!r}")
        self.step = step

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError(f"simulated crash at step {trainer.global_step}")
