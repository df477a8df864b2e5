"""A Lightning data module over an endless, counter-based stream of batches.

The stream is a pure function ``sample(step, rank, device) -> batch``: batch ``s`` of rank
``r`` is the same whatever happened before it. The data loader only yields step numbers;
the batch itself is drawn on the training device in ``on_after_batch_transfer``. So

* resuming at global step ``s`` continues with exactly the batches an uninterrupted run
  would have seen;
* every DDP rank draws its own data (the rank is part of the random seed);
* no worker processes or host-to-device copies are needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, IterableDataset

__all__ = ["StepStream", "StreamDataModule"]

#: ``(step, rank, device) -> batch``, a pure function of its arguments.
BatchSampler = Callable[[int, int, torch.device], Any]


class StepStream(IterableDataset[int]):
    """Yields the step numbers ``start, start + 1, …`` (up to ``stop`` if given)."""

    def __init__(self, start: int = 0, stop: int | None = None) -> None:
        super().__init__()
        self.start = start
        self.stop = stop

    def __iter__(self) -> Iterator[int]:
        step = self.start
        while self.stop is None or step < self.stop:
            yield step
            step += 1


class StreamDataModule(LightningDataModule):
    """Training data drawn on the fly from ``sample(step, rank, device)``.

    Args:
        sample: the batch stream, a pure function of ``(step, rank, device)``.
        max_steps: the last step the stream yields (exclusive); ``None`` is endless.
    """

    def __init__(self, sample: BatchSampler, *, max_steps: int | None = None) -> None:
        super().__init__()
        self.sample = sample
        self.max_steps = max_steps

    def train_dataloader(self) -> DataLoader[int]:
        # Called after a checkpoint is restored, so the stream resumes where it stopped.
        start = self.trainer.global_step if self.trainer is not None else 0
        return DataLoader(StepStream(start, self.max_steps), batch_size=None, num_workers=0)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        return self.sample(int(batch), rank, device)
