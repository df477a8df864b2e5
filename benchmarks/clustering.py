"""Cost of the amortized-clustering experiment's training steps at the paper's settings.

One training step of each network of ``deepsets clustering`` (width 128, ISAB with 16
inducing points, 10 datasets of 100..500 points drawn from the experiment's stream,
negative log-likelihood, Adam), timed in process time (CPU) or wall time with
synchronisation (CUDA), for both input forms:

* ``packed`` — the batch as a jagged nested tensor (what the experiment trains on);
* ``padded`` — padded to the batch's largest set with a bool mask.

Forms alternate step by step, so a load change on a shared machine hits both alike. The
script extrapolates to the ``paper`` preset: 50,000 steps × 3 random seeds per network.

    python benchmarks/clustering.py [--steps 200] [--threads 1] [--device cpu|cuda]

Measured numbers are in ``docs/study/clustering.md``.
"""

from __future__ import annotations

import argparse
import time

import torch

from deepsets.experiments._common import generator_for
from deepsets.experiments.clustering.data import packed, sample_mixtures, set_log_likelihood
from deepsets.experiments.clustering.model import build_model, parse_output

PAPER_STEPS = 50_000
PAPER_SEEDS = 3


def _clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter()
    return time.process_time()


def measure(architecture: str, steps: int, device: torch.device) -> dict[str, float]:
    """Seconds per training step of ``architecture`` for each input form."""
    torch.manual_seed(0)
    model = build_model(architecture, width=128, num_inducing=16).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    spent = {"packed": 0.0, "padded": 0.0}
    for step in range(steps + 10):  # the first 10 steps of each form warm up
        for form in spent:
            start = _clock(device)
            batch = sample_mixtures(10, generator=generator_for(0, 0, 0, step, device=device))
            if form == "packed":
                x, mask = packed(batch), None
            else:
                x, mask = batch.x, batch.mask
            loss = -set_log_likelihood(x, mask, parse_output(model(x, mask))).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 10:
                spent[form] += _clock(device) - start
    return {form: total / steps for form, total in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--architectures", nargs="+", default=["rff", "rffp_mean", "isab_pma"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = "CPU (process) time" if device.type == "cpu" else "wall time, synchronised"
    print(f"{args.steps} steps per form, {args.threads} thread(s), {device}, {clock}")
    print("| network | packed ms/step | padded ms/step | padded / packed | paper preset h |")
    print("|---|---|---|---|---|")
    total = 0.0
    for architecture in args.architectures:
        cost = measure(architecture, args.steps, device)
        hours = cost["packed"] * PAPER_STEPS * PAPER_SEEDS / 3600
        total += hours
        print(
            f"| {architecture} | {1000 * cost['packed']:.1f} | {1000 * cost['padded']:.1f} "
            f"| {cost['padded'] / cost['packed']:.2f} | {hours:.2f} |"
        )
    print(
        f"paper preset ({PAPER_STEPS:,} steps x {PAPER_SEEDS} seeds x "
        f"{len(args.architectures)} networks, packed): {total:.1f} h on one {device.type} "
        "(one thread on CPU)"
    )


if __name__ == "__main__":
    main()
