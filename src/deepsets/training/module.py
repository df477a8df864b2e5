"""The Lightning module shared by every task: a set model, a loss and Adam."""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn

__all__ = ["LOSSES", "SetModelModule"]

LOSSES = ("mse", "cross_entropy")
SCHEDULES = ("constant", "cosine")


class SetModelModule(LightningModule):
    r"""Train any set model ``model(features, mask=None)`` on ``(features, target[, mask])``
    batches with Adam.

    .. math::

        \mathcal{L} = \frac{1}{B}\sum_b \ell\big(\mathrm{model}(X_b), y_b\big), \qquad
        \ell \in \{\text{squared error (mean over outputs)}, \text{cross-entropy}\}

    The learning rate is constant (Adam's defaults, as in the study) or follows a cosine
    from ``lr`` to 0 over ``max_steps`` optimiser steps.

    Shapes:
        - ``features``: ``(B, N, d)``; ``mask``: ``(B, N)`` optional
        - ``target``: ``(B, K)`` float for ``"mse"``, ``(B,)`` class indices for
          ``"cross_entropy"``

    Args:
        model: the network.
        loss: ``"mse"`` or ``"cross_entropy"``.
        lr: Adam's learning rate (``1e-3`` is Adam's default).
        lr_schedule: ``"constant"`` or ``"cosine"``.
        max_steps: length of the cosine schedule.
        hparams: primitive values recorded in checkpoints and logs.
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
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")
        if lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {SCHEDULES}; got {lr_schedule!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0; got {lr!r}")
        self.model = model
        self.loss_name = loss
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.max_steps = max(1, int(max_steps))
        self.save_hyperparameters(hparams or {})

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.model(features, mask)

    def compute_loss(self, prediction: Tensor, target: Tensor) -> Tensor:
        if self.loss_name == "mse":
            return nn.functional.mse_loss(prediction, target)
        return nn.functional.cross_entropy(prediction, target)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        features, target, *rest = batch
        mask = rest[0] if rest else None
        loss = self.compute_loss(self.model(features, mask), target)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        if self.lr_schedule == "constant":
            return optimizer
        total = self.max_steps

        def cosine(step: int) -> float:
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
