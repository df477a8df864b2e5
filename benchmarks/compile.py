"""What ``torch.compile`` buys: compiled vs eager forward+backward, per model.

Every model is compiled once with ``fullgraph=True`` and ``dynamic=True`` (Inductor by
default), warmed up on two set sizes, then eager and compiled steps are timed interleaved,
round by round, on the same padded, masked batch; the table reports medians and the ratio
eager / compiled (> 1: compiled is faster), for a training step (forward+backward) and for
inference (forward under ``torch.no_grad``). ``graphs`` counts Dynamo graphs: 2 means one for
training and one for inference (grad mode is a guard), reused for every size. The machine
may be shared and noisy: only the ratio, measured side by side in one run, means anything.

    python benchmarks/compile.py [--batch 64] [--set-size 256] [--repeats 20] [--threads N]
        [--backend inductor] [--only invariant/sum ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch._dynamo
from torch import Tensor, nn
from torch._dynamo.utils import counters

from deepsets import (
    DeepSetsConditional,
    DeepSetsEquivariant,
    DeepSetsInvariant,
    PermutationEquivariantLayer,
)

CONTEXT = 8


def build_models(features: int) -> dict[str, tuple[nn.Module, bool]]:
    """``name -> (model, takes a context)``: the four models, with each fusion."""
    return {
        "invariant/sum": (DeepSetsInvariant(features, [128, 128], [64], 1), False),
        "invariant/max": (DeepSetsInvariant(features, [128, 128], [64], 1, "max"), False),
        "equivariant/max": (DeepSetsEquivariant(features, [64, 64], 1), False),
        "conditional/concat": (
            DeepSetsConditional(features, CONTEXT, [128, 128], [64], 1),
            True,
        ),
        "conditional/film": (
            DeepSetsConditional(features, CONTEXT, [128, 128], [64], 1, fusion_type="film"),
            True,
        ),
        "conditional/add": (
            DeepSetsConditional(features, CONTEXT, [128, 128], [64], 1, fusion_type="add"),
            True,
        ),
        "layer/max": (PermutationEquivariantLayer(features, 64), False),
    }


def make_step(
    model: nn.Module, context: bool, batch: int, size: int, features: int, *, train: bool = True
) -> Callable[[nn.Module], None]:
    """One forward+backward (or, with ``train=False``, one forward under ``no_grad``) on a
    fixed batch with a quarter of the positions padded."""
    generator = torch.Generator().manual_seed(size)
    x = torch.randn(batch, size, features, generator=generator, requires_grad=True)
    mask = torch.rand(batch, size, generator=generator) < 0.75
    args: tuple[Tensor, ...] = (x, torch.randn(batch, CONTEXT, generator=generator))
    if not context:
        args = (x,)

    def step(fn: nn.Module) -> None:
        if train:
            fn(*args, mask=mask).square().mean().backward()
            return
        with torch.no_grad():
            fn(*args, mask=mask)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--set-size", type=int, default=256)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--only", nargs="*", default=None, help="model names to run")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, backend {args.backend}, "
        f"B={args.batch} M={args.set_size} D={args.features}, "
        f"median ms of {args.repeats} interleaved rounds, ratio = eager / compiled"
    )
    print(
        f"{'model':<20} {'train eager':>11} {'compiled':>9} {'ratio':>6} "
        f"{'infer eager':>11} {'compiled':>9} {'ratio':>6} {'compile s':>9} {'graphs':>6} "
        f"{'breaks':>6}"
    )
    models = build_models(args.features)
    for name, (model, context) in models.items():
        if args.only and name not in args.only:
            continue
        torch._dynamo.reset()
        counters.clear()
        compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=args.backend)
        start = time.perf_counter()
        for size in (args.set_size // 2 + 1, args.set_size + 3):  # compile, prove reuse
            make_step(model, context, args.batch, size, args.features)(compiled)
        for size in (args.set_size // 2 + 1, args.set_size + 3):
            make_step(model, context, args.batch, size, args.features, train=False)(compiled)
        compile_seconds = time.perf_counter() - start

        steps = {
            mode: make_step(
                model, context, args.batch, args.set_size, args.features, train=mode == "train"
            )
            for mode in ("train", "infer")
        }
        times: dict[str, list[float]] = {}
        for mode, step in steps.items():
            step(model)  # eager warm-up
            step(compiled)
            times[f"{mode}/eager"], times[f"{mode}/compiled"] = [], []
        for _ in range(args.repeats):
            for mode, step in steps.items():
                for label, fn in (("eager", model), ("compiled", compiled)):
                    model.zero_grad(set_to_none=True)
                    begin = time.perf_counter()
                    step(fn)
                    times[f"{mode}/{label}"].append(time.perf_counter() - begin)
        ms = {key: statistics.median(values) * 1e3 for key, values in times.items()}
        graphs = counters["stats"]["unique_graphs"]
        breaks = sum(counters["graph_break"].values())
        cells = []
        for mode in ("train", "infer"):
            eager, fast = ms[f"{mode}/eager"], ms[f"{mode}/compiled"]
            cells.append(f"{eager:>11.2f} {fast:>9.2f} {eager / fast:>6.2f}")
        print(
            f"{name:<20} {cells[0]} {cells[1]} {compile_seconds:>9.1f} {graphs:>6} {breaks:>6}",
            flush=True,
        )


if __name__ == "__main__":
    main()
