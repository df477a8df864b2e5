"""The Lightning module shared by every task: a set model, a loss and Adam."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn

from .._validation import check_dim, resolve_option

__all__ = ["LOSSES", "SCHEDULES", "Loss", "Schedule", "SetModelModule"]


class Loss(str, Enum):
    """Training losses of :class:`SetModelModule`."""

    MSE = "mse"
    L1 = "l1"
    CROSS_ENTROPY = "cross_entropy"


class Schedule(str, Enum):
    """Learning-rate schedules of :class:`SetModelModule`."""

    CONSTANT = "constant"
    COSINE = "cosine"
    ONECYCLE = "onecycle"


LOSSES = tuple(member.value for member in Loss)
SCHEDULES = tuple(member.value for member in Schedule)


class SetModelModule(LightningModule):
    r"""Train any set model ``model(features, mask=None)`` on ``(features, target[, mask])``
    batches with Adam.

    .. math::

        \mathcal{L} = \frac{1}{B}\sum_b \ell\big(\mathrm{model}(X_b), y_b\big), \qquad
        \ell \in \{\text{squared error}, \text{absolute error (both mean over outputs)},
        \text{cross-entropy}\}

    The learning rate is constant (Adam's defaults, as in the study), follows a cosine
    from ``lr`` to 0 over ``max_steps`` optimiser steps, or a one-cycle schedule
    (:class:`torch.optim.lr_scheduler.OneCycleLR`, peak ``lr``, ``max_steps`` steps).

    Shapes:
        - ``features``: ``(B, N, d)``; ``mask``: ``(B, N)`` optional
        - ``target``: ``(B, K)`` float for ``"mse"`` and ``"l1"``, ``(B,)`` class indices
          for ``"cross_entropy"``

    Args:
        model: the network.
        loss: ``"mse"``, ``"l1"`` or ``"cross_entropy"``.
        lr: Adam's learning rate (``1e-3`` is Adam's default); the peak for one-cycle.
        lr_schedule: ``"constant"``, ``"cosine"`` or ``"onecycle"``.
        max_steps: length of the cosine and one-cycle schedules.
        hparams: primitive values recorded in checkpoints and logs.

    Raises:
        ValueError: for an unknown ``loss`` or ``lr_schedule`` (naming the choices), a
            non-positive ``lr`` or ``max_steps``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str = "mse",
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        max_steps: int = 1,
        hparams: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.loss_kind = resolve_option(loss, Loss, name="loss")
        self.schedule = resolve_option(lr_schedule, Schedule, name="lr_schedule")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(f"lr must be a number > 0; got {lr!r}")
        steps = check_dim(max_steps, name="max_steps")
        self.model = model
        self.loss_name = self.loss_kind.value
        self.lr = float(lr)
        self.lr_schedule = self.schedule.value
        self.max_steps = steps
        self.save_hyperparameters(hparams or {})

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """``model(features, mask)``."""
        return self.model(features, mask)

    def compute_loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The batch loss (a scalar) of ``prediction`` against ``target``."""
        if self.loss_kind is Loss.MSE:
            return nn.functional.mse_loss(prediction, target)
        if self.loss_kind is Loss.L1:
            return nn.functional.l1_loss(prediction, target)
        return nn.functional.cross_entropy(prediction, target)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """One optimiser step's loss on ``(features, target[, mask])``; logged as ``loss``."""
        features, target, *rest = batch
        mask = rest[0] if rest else None
        loss = self.compute_loss(self.model(features, mask), target)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self) -> Any:
        """Adam over the model's parameters, with the chosen step-wise schedule."""
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        total = self.max_steps
        scheduler: torch.optim.lr_scheduler.LRScheduler
        if self.schedule is Schedule.CONSTANT:
            return optimizer
        if self.schedule is Schedule.ONECYCLE:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.lr, total_steps=total
            )
        else:

            def cosine(step: int) -> float:
                return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
