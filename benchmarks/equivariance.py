"""Structured equivariant layers vs the dense weight-sharing path, and the cost of bases.

Four measurements (issue 9's targets):

1. ``SecondOrderEquivariantLayer`` (C = 16 → 16, forward+backward) against
   ``EquivariantLinear(SymmetricAction(N, 2), SymmetricAction(N, 2))``, which expands the
   dense ``(C·N²)²`` weight every step. Both are timed interleaved in one process (medians;
   the machine is shared, so only ratios are meaningful) for every N whose dense weight
   fits under ``--dense-mib``; the largest such N is the headline. Peak memory of one
   step is measured in a fresh child process per configuration (``ru_maxrss`` growth).
2. The fast layer at B = 8, N = 256, where the dense weight would need terabytes.
3. Building a second-order layer at N = 100 (and the refusal of the 6 GB dense basis).
4. The numerical null-space solver for N ≤ 6, next to the closed forms.

    python benchmarks/equivariance.py [--repeats 7] [--dense-mib 512] [--channels 16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from deepsets.equivariance import (
    EquivariantLinear,
    ProductAction,
    SecondOrderEquivariantLayer,
    SymmetricAction,
    intertwiner_basis,
)

S = SymmetricAction


def dense_weight_bytes(n: int, channels: int) -> int:
    return (channels * n * n) ** 2 * 4


def build(kind: str, n: int, channels: int) -> nn.Module:
    if kind == "fast":
        return SecondOrderEquivariantLayer(channels, channels, pool_type="sum")
    return EquivariantLinear(S(n, 2), S(n, 2), channels, channels)


def make_step(kind: str, layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward+backward; the dense layer takes the flattened (B, N², C) input."""
    inp = x if kind == "fast" else x.flatten(1, 2)

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        layer(inp).square().mean().backward()

    return step


def time_interleaved(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds per call, the variants timed in turn each round after one warm-up."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_child(kind: str, n: int, batch: int, channels: int, queue: mp.Queue) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layer = build(kind, n, channels)
    x = torch.randn(batch, n, n, channels)
    step = make_step(kind, layer, x)
    step()  # warm-up: autograd engine and allocator set-up are not the step's memory
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # reset the peak (VmHWM) to the current resident size
    step()
    queue.put((_status_kib("VmHWM") - before) * 1024)


def peak_step_bytes(kind: str, n: int, batch: int, channels: int) -> int:
    """Growth of the peak resident memory over one forward+backward, in a fresh process.

    The layer and the input exist, and one warm-up step has run, before the baseline is
    read, so this is the working memory of the step (activations, the expanded weight and
    its gradient). Linux only;
    glibc is told to ``mmap`` every block over 64 KiB so freed memory is not recycled
    silently.
    """
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(kind, n, batch, channels, queue))
    proc.start()
    try:
        result = queue.get(timeout=600)
    finally:
        proc.join(timeout=60)
    return int(result)


def mib(count: float) -> str:
    return f"{count / 2**20:,.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16, 20, 24, 28, 32])
    parser.add_argument(
        "--dense-mib", type=float, default=512, help="largest dense weight to try (MiB)"
    )
    parser.add_argument("--large-n", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (shared machine)")
    args = parser.parse_args()
    b, c = args.batch, args.channels
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, B={b}, C={c}->{c}")
    print("(shared machine: absolute times are noisy, ratios come from one interleaved run)\n")

    # 1. fast vs dense ---------------------------------------------------------------
    fitting = [n for n in args.sizes if dense_weight_bytes(n, c) <= args.dense_mib * 2**20]
    print("1. SecondOrderEquivariantLayer vs dense EquivariantLinear, forward+backward")
    print(f"   dense weight cap {args.dense_mib:g} MiB -> N in {fitting}")
    header = (
        f"   {'N':>4}{'dense W':>12}{'dense ms':>11}{'fast ms':>10}{'ratio':>9}"
        f"{'peak dense':>14}{'peak fast':>13}"
    )
    print(header)
    for n in fitting:
        x = torch.randn(b, n, n, c)
        layers = {kind: build(kind, n, c) for kind in ("dense", "fast")}
        steps = {kind: make_step(kind, layer, x) for kind, layer in layers.items()}
        seconds = time_interleaved(steps, args.repeats)
        peaks = {kind: peak_step_bytes(kind, n, b, c) for kind in ("dense", "fast")}
        print(
            f"   {n:>4}{mib(dense_weight_bytes(n, c)):>12}{seconds['dense'] * 1e3:>11.1f}"
            f"{seconds['fast'] * 1e3:>10.2f}{seconds['dense'] / seconds['fast']:>9.0f}"
            f"{mib(peaks['dense']):>14}{mib(peaks['fast']):>13}"
        )
        del layers, steps
    print(f"   headline: largest N whose dense weight fits = {fitting[-1]}\n")

    # 2. fast path where the dense one cannot exist ------------------------------------
    n = args.large_n
    print(
        f"2. fast path at B={b}, N={n}: the dense weight would be {dense_weight_bytes(n, c):.3e} B"
    )
    try:
        intertwiner_basis(S(n, 2), S(n, 2))
    except ValueError as error:
        print(f"   intertwiner_basis refuses: {str(error)[:110]}...")
    layer = build("fast", n, c)
    x = torch.randn(b, n, n, c)
    seconds = time_interleaved({"fast": make_step("fast", layer, x)}, max(3, args.repeats // 2))
    peak = peak_step_bytes("fast", n, b, c)
    print(
        f"   forward+backward {seconds['fast'] * 1e3:.0f} ms, step peak {mib(peak)} "
        f"(input B·N²·C·4 = {mib(x.numel() * 4)})\n"
    )

    # 3. building at N = 100 -----------------------------------------------------------
    print("3. building a second-order layer at N=100")
    start = time.perf_counter()
    layer = SecondOrderEquivariantLayer(c, c)
    built = time.perf_counter() - start
    start = time.perf_counter()
    layer(torch.randn(1, 100, 100, c))
    first = time.perf_counter() - start
    start = time.perf_counter()
    try:
        intertwiner_basis(S(100, 2), S(100, 2))
    except ValueError:
        refused = time.perf_counter() - start
    print(
        f"   constructor {built * 1e3:.2f} ms, first forward (B=1) {first * 1e3:.1f} ms, "
        f"dense-basis refusal {refused * 1e3:.2f} ms\n"
    )

    # 4. the solver ----------------------------------------------------------------------
    print("4. intertwiner_basis by method (seconds, one call each)")
    cases = [(f"S{n} order 2->2", S(n, 2), S(n, 2)) for n in range(2, 7)]
    cases += [(f"S{n} order 1->1", S(n), S(n)) for n in (6, 24)]
    cases += [("S2xS3xS4", *(ProductAction(S(2), S(3), S(4)),) * 2)]
    print(f"   {'case':<18}{'K':>4}{'nullspace':>11}{'orbits':>9}{'closed':>9}")
    for name, a_in, a_out in cases:
        seconds = {}
        shapes = set()
        for method in ("nullspace", "orbits", "closed_form"):
            start = time.perf_counter()
            shapes.add(tuple(intertwiner_basis(a_in, a_out, method=method).shape))
            seconds[method] = time.perf_counter() - start
        assert len(shapes) == 1
        print(
            f"   {name:<18}{shapes.pop()[0]:>4}{seconds['nullspace']:>11.3f}"
            f"{seconds['orbits']:>9.4f}{seconds['closed_form']:>9.4f}"
        )


if __name__ == "__main__":
    main()
