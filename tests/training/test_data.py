"""The step stream: batches are a function of the step, and resumption starts mid-stream."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from deepsets.training import StepStream, StreamDataModule


def test_step_stream_counts_from_start() -> None:
    assert list(StepStream(3, 7)) == [3, 4, 5, 6]
    endless = iter(StepStream(5))
    assert [next(endless) for _ in range(3)] == [5, 6, 7]


def _sample(step: int, rank: int, device: torch.device) -> tuple[int, int, str]:
    return step, rank, str(device)


def test_data_module_resumes_at_the_global_step_and_draws_per_rank() -> None:
    datamodule = StreamDataModule(_sample, max_steps=10)
    datamodule.trainer = SimpleNamespace(  # type: ignore[assignment]
        global_step=7, global_rank=1, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )
    steps = [int(s) for s in datamodule.train_dataloader()]
    assert steps == [7, 8, 9]
    assert datamodule.on_after_batch_transfer(8, 0) == (8, 1, "cpu")


def test_data_module_without_trainer() -> None:
    datamodule = StreamDataModule(_sample, max_steps=2)
    assert [int(s) for s in datamodule.train_dataloader()] == [0, 1]
    assert datamodule.on_after_batch_transfer(1, 0) == (1, 0, "cpu")
