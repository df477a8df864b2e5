"""What masking costs: forward+backward with ``mask=None`` vs an all-ones mask vs half padding.

For every model and pooling the three inputs are timed interleaved in one run (machines are
shared and noisy, so only the ratios to ``mask=None`` are reported), and the activation
memory saved for backward is counted exactly with ``saved_tensors_hooks``.

    python benchmarks/pooling.py [--batch 64] [--set-size 256] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from deepsets import DeepSetsConditional, DeepSetsEquivariant, DeepSetsInvariant


def saved_bytes(step: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd keeps for backward during one forward."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    out.sum().backward()
    return total


def time_interleaved(
    steps: dict[str, Callable[[], torch.Tensor]], repeats: int
) -> dict[str, float]:
    """Median seconds per forward+backward, the variants timed in turn each round."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step().sum().backward()
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step().sum().backward()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--set-size", type=int, default=256)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    b, m, d = args.batch, args.set_size, args.features

    x = torch.randn(b, m, d)
    context = torch.randn(b, 8)
    ones = torch.ones(b, m, dtype=torch.bool)
    half = torch.arange(m).expand(b, m) < m // 2  # every set half padding

    models: dict[str, tuple[nn.Module, bool]] = {}
    for pool in ("sum", "mean", "max"):
        models[f"invariant/{pool}"] = (DeepSetsInvariant(d, [128, 128], [64], 1, pool), False)
    for pool in ("sum", "mean", "max"):
        models[f"equivariant/{pool}"] = (DeepSetsEquivariant(d, [64, 64], 1, pool), False)
    for fusion in ("concat", "film", "add"):
        models[f"conditional/{fusion}"] = (
            DeepSetsConditional(d, 8, [128, 128], [64], 1, fusion_type=fusion),
            True,
        )

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, B={b} M={m} D={d}")
    header = (
        f"{'model':<22}{'no mask ms':>11}{'ones/none':>11}{'half/none':>11}"
        f"{'mem none MB':>13}{'ones/none':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, (model, needs_context) in models.items():
        extra = (context,) if needs_context else ()

        def step(mask: torch.Tensor | None, model: nn.Module = model, extra=extra) -> torch.Tensor:
            return model(x, *extra, mask=mask)

        steps = {
            "none": lambda: step(None),
            "ones": lambda: step(ones),
            "half": lambda: step(half),
        }
        seconds = time_interleaved(steps, args.repeats)
        memory = {key: saved_bytes(fn) for key, fn in steps.items()}
        print(
            f"{name:<22}{seconds['none'] * 1e3:>11.2f}"
            f"{seconds['ones'] / seconds['none']:>11.2f}{seconds['half'] / seconds['none']:>11.2f}"
            f"{memory['none'] / 2**20:>13.1f}{memory['ones'] / memory['none']:>11.2f}"
        )
    print(
        "\nones/none: an all-ones mask over no mask (the masking overhead); half/none: half of "
        "every set is padding, still computed (padding is not free; see the packed form)."
    )


if __name__ == "__main__":
    main()
