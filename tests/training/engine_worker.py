"""A stand-alone training script for the multi-process tests of ``test_engine.py``.

Run as ``python engine_worker.py MODE OUT STEPS``:

* ``ddp``: trains the toy task with ``strategy="ddp"`` on two CPU processes (gloo); each
  rank saves its final weights to ``OUT/rank{r}.pt``. Lightning launches the second
  process by re-running this script.
* ``kill``: trains on one process with a checkpoint every 5 steps and kills itself with
  ``SIGKILL`` (no clean-up of any kind) after step ``STEPS // 2 + 2``.

The toy task lives here so that the test can build the same model and stream.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import torch
from lightning.pytorch import Callback

from deepsets import DeepSetsInvariant
from deepsets.experiments._common import generator_for
from deepsets.training import EngineSettings, SetModelModule, fit_stream


def toy_sample(step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Sets of 6 points in R^3; the target is the sum of the first two coordinates."""
    generator = generator_for(11, rank, step, device=device)
    x = torch.randn(8, 6, 3, generator=generator, device=device)
    return x, x.sum(dim=1)[:, :2]


def toy_module(max_steps: int, schedule: str = "cosine") -> SetModelModule:
    torch.manual_seed(0)
    model = DeepSetsInvariant(3, [16], [], 2)
    return SetModelModule(model, lr=1e-2, lr_schedule=schedule, max_steps=max_steps)


class KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Any, *_: Any) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(mode: str, out: str, steps: int) -> None:
    torch.set_num_threads(1)
    if mode == "ddp":
        settings = EngineSettings(
            accelerator="cpu", devices=2, strategy="ddp", logger="none", progress=False
        )
        module = toy_module(steps)
        result = fit_stream(
            module, toy_sample, max_steps=steps, out_dir=out, name="ddp", settings=settings
        )
        rank = torch.distributed.get_rank()
        state = {k: v.detach().cpu() for k, v in module.model.state_dict().items()}
        torch.save(
            {"state": state, "world_size": result.extra["world_size"], "step": result.global_step},
            os.path.join(out, f"rank{rank}.pt"),
        )
    elif mode == "kill":
        settings = EngineSettings(
            accelerator="cpu", devices=1, logger="none", progress=False, checkpoint_every=5
        )
        fit_stream(
            toy_module(steps),
            toy_sample,
            max_steps=steps,
            out_dir=out,
            name="toy",
            settings=settings,
            callbacks=[KillAt(steps // 2 + 2)],
        )
    else:
        raise ValueError(f"mode must be 'ddp' or 'kill'; got {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
