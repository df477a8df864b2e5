"""Callbacks: a step-based progress bar, a step reporter for runs in worker processes, the
best weights by a score (:class:`KeepBest`), and a simulated crash for resume tests."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from .._validation import check_dim

__all__ = ["InterruptAt", "KeepBest", "StepProgressBar", "StepReporter"]


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

    def init_train_tqdm(self) -> Tqdm:
        # Created with its label, total and starting step, so no placeholder
        # "Training: 0/?" bar is drawn first (Lightning's bar is made before it knows them).
        trainer = self.trainer
        return Tqdm(
            desc=self.description,
            total=trainer.max_steps if trainer.max_steps > 0 else None,
            initial=trainer.global_step,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    def on_train_epoch_start(self, trainer: Trainer, *_: Any) -> None:
        """Keep counting steps across epochs (Lightning's bar restarts every epoch)."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        bar = self.train_progress_bar
        step = trainer.global_step
        if step % self.refresh_rate == 0 or step == trainer.max_steps:
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()


class StepReporter(Callback):
    """Call ``report(n)`` with the number of optimiser steps taken since the last report.

    For runs in worker processes: each worker reports (e.g. into a queue) and the parent
    draws one bar over the steps of all runs, instead of one bar per worker overwriting
    the others on the terminal. A resumed run first reports the steps it resumes from, so
    the reports of a run add up to its ``max_steps``.

    Args:
        report: called with a positive step count, every ``every`` steps and at the end.
        every: how many steps between reports (a positive int).
    """

    def __init__(self, report: Callable[[int], None], every: int = 20) -> None:
        if not callable(report):
            raise TypeError(f"report must be callable; got {type(report).__name__}")
        self.report = report
        self.every = check_dim(every, name="every")
        self._reported = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._reported = 0
        self._flush(trainer.global_step)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step - self._reported >= self.every or step == trainer.max_steps:
            self._flush(step)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._flush(trainer.global_step)

    def _flush(self, step: int) -> None:
        if step > self._reported:
            self.report(step - self._reported)
            self._reported = step


class InterruptAt(Callback):
    """Raise :class:`RuntimeError` once ``global_step >= step``, simulating a crash.

    Used to test that ``--resume`` reproduces an uninterrupted run: the last checkpoint
    written before the crash is the one the resumed run starts from.

    Args:
        step: the optimiser step after which to crash (a positive int).
    """

    def __init__(self, step: int) -> None:
        self.step = check_dim(step, name="step")

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError(f"simulated crash at step {trainer.global_step}")


class KeepBest(Callback):
    """Score the model every ``every`` steps and keep a copy of the best weights.

    A stream run has no validation epochs for Lightning's ``ModelCheckpoint(monitor=...)``
    to watch, so this callback scores the model itself: ``score(model)`` (lower is better,
    e.g. the error on a fixed validation draw) is called in eval mode without gradients
    at every ``every``-th step and at the last one. The best weights stay in memory (on
    the CPU) and in the callback's checkpoint state, so a resumed run keeps them and ends
    exactly as an uninterrupted one. The module is not changed: after training, load
    :attr:`best_state` into the model to use the best weights.

    Attributes:
        best_score: the lowest score seen (``inf`` before the first).
        best_step: the optimiser step of :attr:`best_score` (``-1`` before the first).
        best_state: the model's ``state_dict`` at :attr:`best_step` (CPU tensors).
        history: ``[(step, score), ...]`` of every scoring.

    Args:
        score: ``model -> float``, lower is better; ``model`` is the module's ``model``.
        every: steps between scorings (a positive int).
    """

    def __init__(self, score: Callable[[Any], float], every: int) -> None:
        if not callable(score):
            raise TypeError(f"score must be callable; got {type(score).__name__}")
        self.score = score
        self.every = check_dim(every, name="every")
        self.best_score = math.inf
        self.best_step = -1
        self.best_state: dict[str, Any] = {}
        self.history: list[tuple[int, float]] = []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step % self.every and step != trainer.max_steps:
            return
        if self.history and self.history[-1][0] == step:
            return
        model = getattr(pl_module, "model", pl_module)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            value = float(self.score(model))
        model.train(was_training)
        self.history.append((step, value))
        if value < self.best_score:  # a NaN score is never the best
            self.best_score, self.best_step = value, step
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_step": self.best_step,
            "best_state": self.best_state,
            "history": [list(item) for item in self.history],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = float(state_dict["best_score"])
        self.best_step = int(state_dict["best_step"])
        self.best_state = dict(state_dict["best_state"])
        self.history = [(int(s), float(v)) for s, v in state_dict["history"]]
