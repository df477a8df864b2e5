"""Variable-size sets: padded + mask vs packed (nested) vs the bound, and streaming.

Section 1, a skewed batch (256 sets, log-normal sizes, mean ≈ 64, largest 1000) and a
uniform batch (256 sets of 64): ``DeepSetsInvariant`` with φ 16→128→128 and ρ 128→64→1,
forward+backward, for sum / mean / max pooling:

* ``padded``  — ``model(x, mask)`` on the batch padded to the largest set;
* ``packed``  — ``model(nested)`` on a ``torch.nested`` jagged tensor;
* ``bound``   — φ on the real rows, one ``index_add_``, ρ (the least work possible);
* ``pyg``     — φ, PyG's ``Sum/Mean/MaxAggregation`` with an index, ρ (only when
  ``torch_geometric`` is importable; it is not a dependency).

The variants are timed interleaved in one run, one step of each per round (machines are
shared and noisy: compare the ratios). A ratio of two variants timed in the same rounds is
the median of the per-round ratios, with a 95 % bootstrap interval in brackets: a ratio
whose interval contains 1 is a tie. On the skewed batch the ~30x slower padded step is
timed apart, since it evicts the caches of whichever step follows it. glibc's allocator
settings matter for every variant (``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``,
as the CLI sets them). Memory: bytes autograd saves for backward (exact), and the peak RSS
growth of one forward+backward in a fresh process per variant.

Section 2, streaming a 10M × 16 set through φ 16→64→64 in chunks (generated on the fly, the
set is never held), in a fresh process: elements per second and peak RSS. Then training
through chunks, one forward+backward over a 1M × 16 set: ``forward_chunks`` keeping every
chunk's activations or recomputing them (``checkpoint=True``), and ``backward_chunks``
(two passes over regenerated chunks): time and peak RSS growth.

    python benchmarks/ragged.py [--threads 2] [--repeats 151] [--rows 10000000] [--chunk 65536]
        [--train-rows 1000000] [--no-rss] [--no-streaming]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from deepsets import DeepSetsInvariant, pack_sets, pad_sets
from deepsets.streaming import PoolingState, chunked
from deepsets.testing import saved_tensor_bytes

POOLS = ["sum", "mean", "max"]
BATCH = 256
BOOTSTRAP = 1000  # resamples for the intervals of the ratios
WARMUP = 5  # untimed rounds before timing


def _pyg_aggr() -> Any:
    """PyG's ``torch_geometric.nn.aggr`` module, or ``None`` (an optional comparison)."""
    try:
        from torch_geometric.nn import aggr
    except Exception:  # pragma: no cover - depends on the environment
        return None
    return aggr


def skewed_sizes(seed: int = 0) -> list[int]:
    """256 log-normal sizes with mean ≈ 64; the largest is set to 1000."""
    generator = torch.Generator().manual_seed(seed)
    sigma = 1.1
    mu = math.log(64) - sigma**2 / 2
    sizes = torch.exp(mu + sigma * torch.randn(BATCH, generator=generator)).round().long()
    sizes = sizes.clamp(1, 1000)
    sizes[sizes.argmax()] = 1000
    return sizes.tolist()


def make_model(pool: str) -> DeepSetsInvariant:
    torch.manual_seed(0)
    return DeepSetsInvariant(16, [128, 128], [64], 1, pool_type=pool)


def steps(
    pool: str, sizes: list[int], uniform: bool, with_pyg: bool = True
) -> dict[str, Callable[[], Tensor]]:
    """One forward (returns the loss) per variant; the caller runs backward."""
    model = make_model(pool)
    generator = torch.Generator().manual_seed(1)
    sets = [torch.randn(n, 16, generator=generator) for n in sizes]
    x_pad, mask = pad_sets(sets)
    packed = pack_sets(sets)
    values = packed.values()
    offsets = packed.offsets()
    index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    counts = torch.tensor(sizes, dtype=torch.float32).clamp(min=1).unsqueeze(1)

    def bound() -> Tensor:
        h = model.phi(values)
        pooled = h.new_zeros(len(sizes), h.shape[1]).index_add_(0, index, h)
        if pool == "mean":
            pooled = pooled / counts
        return model.rho(pooled).sum()

    variants: dict[str, Callable[[], Tensor]] = {
        "padded": lambda: model(x_pad, mask).sum(),
        "packed": lambda: model(packed).sum(),
        "bound": bound,
    }
    if uniform:
        variants["padded-nomask"] = lambda: model(x_pad).sum()
    pyg_aggr = _pyg_aggr() if with_pyg else None
    if pyg_aggr is not None:
        module = {
            "sum": pyg_aggr.SumAggregation,
            "mean": pyg_aggr.MeanAggregation,
            "max": pyg_aggr.MaxAggregation,
        }[pool]()
        variants["pyg"] = lambda: model.rho(
            module(model.phi(values), index, dim_size=len(sizes))
        ).sum()
    del offsets
    return variants


def time_interleaved(
    variants: dict[str, Callable[[], Tensor]], repeats: int
) -> dict[str, list[float]]:
    """Seconds per forward+backward of every variant, ``repeats`` rounds of one step each.

    The order alternates between rounds, so no variant always runs after the same one.
    """
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(WARMUP):  # the allocator and caches settle over the first few steps
        for step in variants.values():
            step().backward()
    names = list(variants)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            variants[name]().backward()
            times[name].append(time.perf_counter() - start)
    return times


def per_round(times: dict[str, list[float]], a: str, b: str) -> list[float]:
    """Time of ``a`` over time of ``b`` in each round both ran in."""
    return [x / y for x, y in zip(times[a], times[b], strict=True)]


def ratio(times: dict[str, list[float]], a: str, b: str, *, paired: bool = True) -> float:
    """Time of ``a`` over time of ``b``: the median of per-round ratios when both ran in the
    same rounds (a slow spell of the machine hits both sides of a pair), else of medians."""
    if paired:
        return statistics.median(per_round(times, a, b))
    return statistics.median(times[a]) / statistics.median(times[b])


def ratio_with_interval(times: dict[str, list[float]], a: str, b: str) -> str:
    """The paired ratio and a 95 % bootstrap interval of it, e.g. ``1.000 [0.991, 1.009]``."""
    ratios = per_round(times, a, b)
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(BOOTSTRAP)
    )
    low, high = medians[int(0.025 * BOOTSTRAP)], medians[int(0.975 * BOOTSTRAP) - 1]
    return f"{statistics.median(ratios):.3f} [{low:.3f}, {high:.3f}]"


def rss_mb() -> float:
    """Peak resident set size of this process so far, MB.

    Reads ``VmHWM`` (reset by ``exec``): ``ru_maxrss`` of a child started by
    ``subprocess`` also covers its parent's peak before the ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_peak(args: argparse.Namespace, kind: str, pool: str, variant: str) -> float:
    """Peak RSS growth (MB) of one forward+backward of ``variant``, in a fresh process."""
    command = [
        sys.executable,
        __file__,
        "--child-memory",
        f"{kind}:{pool}:{variant}",
        "--threads",
        str(args.threads),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])


def memory_child(spec: str) -> None:
    kind, pool, variant = spec.split(":")
    sizes = skewed_sizes() if kind == "skewed" else [64] * BATCH
    step = steps(pool, sizes, uniform=kind == "uniform", with_pyg=variant == "pyg")[variant]
    before = rss_mb()
    step().backward()
    print(json.dumps({"peak_mb": rss_mb() - before}))


def batch_section(args: argparse.Namespace, kind: str) -> None:
    pyg_aggr = _pyg_aggr()
    sizes = skewed_sizes() if kind == "skewed" else [64] * BATCH
    n = sum(sizes)
    print(
        f"\n## {kind} batch: {BATCH} sets, mean size {n / BATCH:.1f}, largest {max(sizes)}, "
        f"{n} real rows, padded to {BATCH * max(sizes)} rows ({BATCH * max(sizes) / n:.1f}x)"
    )
    header = "| pool | padded ms | packed ms | bound ms |"
    if kind == "uniform":
        header += " padded-nomask ms |"
    if pyg_aggr is not None:
        header += " pyg ms |"
    header += " packed / bound | padded / packed |"
    if kind == "uniform":
        header += " packed / padded-nomask |"
    if pyg_aggr is not None:
        header += " packed / pyg |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    memory_rows = []
    for pool in POOLS:
        variants = steps(pool, sizes, uniform=kind == "uniform")
        if kind == "skewed":
            # A 30x slower padded step evicts the caches and allocator state the step after
            # it uses, so it is timed on its own; the rest are interleaved with each other.
            fast = {name: step for name, step in variants.items() if name != "padded"}
            t = time_interleaved(fast, args.repeats)
            padded = {"padded": variants["padded"]}
            t.update(time_interleaved(padded, max(3, args.repeats // 15)))
        else:
            t = time_interleaved(variants, args.repeats)
        ms = {k: statistics.median(v) * 1e3 for k, v in t.items()}
        row = f"| {pool} | {ms['padded']:.1f} | {ms['packed']:.1f} | {ms['bound']:.1f} |"
        if kind == "uniform":
            row += f" {ms['padded-nomask']:.1f} |"
        if pyg_aggr is not None:
            row += f" {ms['pyg']:.1f} |"
        padded_apart = kind == "skewed"
        row += f" {ratio_with_interval(t, 'packed', 'bound')} |"
        row += f" {ratio(t, 'padded', 'packed', paired=not padded_apart):.1f} |"
        if kind == "uniform":
            row += f" {ratio(t, 'packed', 'padded-nomask'):.3f} |"
        if pyg_aggr is not None:
            row += f" {ratio_with_interval(t, 'packed', 'pyg')} |"
        print(row, flush=True)
        saved = {name: saved_tensor_bytes(step) / 2**20 for name, step in variants.items()}
        peaks = {}
        if args.rss:
            peaks = {name: child_peak(args, kind, pool, name) for name in ("padded", "packed")}
        memory_rows.append((pool, saved, peaks))
    print("\n| pool | saved for backward: padded MB | packed MB | packed / padded |", end="")
    print(" peak RSS growth: padded MB | packed MB | packed / padded |" if args.rss else "")
    print("|---|---|---|---|" + ("---|---|---|" if args.rss else ""))
    for pool, saved, peaks in memory_rows:
        row = (
            f"| {pool} | {saved['padded']:.1f} | {saved['packed']:.1f} | "
            f"{saved['packed'] / saved['padded']:.2f} |"
        )
        if peaks:
            row += (
                f" {peaks['padded']:.1f} | {peaks['packed']:.1f} | "
                f"{peaks['packed'] / max(peaks['padded'], 1e-9):.2f} |"
            )
        print(row, flush=True)


def stream_child(rows: int, chunk: int) -> None:
    """Stream ``rows`` × 16 random elements through φ 16→64→64 (sum, mean and max)."""
    torch.manual_seed(0)
    model = DeepSetsInvariant(16, [64, 64], [64], 1).eval()
    generator = torch.Generator().manual_seed(0)
    baseline = rss_mb()
    states = {pool: PoolingState(pool) for pool in POOLS}
    start = time.perf_counter()
    with torch.no_grad():
        for offset in range(0, rows, chunk):
            x = torch.randn(min(chunk, rows - offset), 16, generator=generator)
            h = model.phi(x)
            for state in states.values():
                state.update(h)
        out = model.rho(states["sum"].result())
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "rows": rows,
                "chunk": chunk,
                "seconds": seconds,
                "elements_per_s": rows / seconds,
                "peak_rss_mb": rss_mb(),
                "rss_after_import_mb": baseline,
                "finite": bool(torch.isfinite(out).all()),
            }
        )
    )


def train_stream_child(rows: int, chunk: int, mode: str) -> None:
    """Forward+backward over a ``rows`` × 16 set: ``forward_chunks`` on the set held in
    memory (``plain`` / ``checkpoint``), or ``backward_chunks`` on chunks generated twice
    (``two-pass``: the set is never held). Times the second of two steps."""
    torch.manual_seed(0)
    model = DeepSetsInvariant(16, [64, 64], [64], 1)

    def generate() -> Iterator[Tensor]:
        generator = torch.Generator().manual_seed(0)
        for start in range(0, rows, chunk):
            yield torch.randn(min(chunk, rows - start), 16, generator=generator)

    x = torch.cat(list(generate())) if mode != "two-pass" else None

    def step() -> None:
        if x is None:
            model.backward_chunks(generate, lambda out: out.sum())
        else:
            out = model.forward_chunks(chunked(x, chunk), checkpoint=mode == "checkpoint")
            out.sum().backward()

    baseline = rss_mb()
    step()  # the first step also pays for warming up; the peak is the same for both
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_growth_mb": rss_mb() - baseline}))


def streaming_section(args: argparse.Namespace) -> None:
    command = [sys.executable, __file__, "--child-stream", "--rows", str(args.rows)]
    command += ["--chunk", str(args.chunk), "--threads", str(args.threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"\n## streaming {result['rows']:,} x 16 through phi 16->64->64 in chunks of "
        f"{result['chunk']:,} (sum, mean and max states updated)\n"
        f"{result['elements_per_s'] / 1e6:.2f} M elements/s ({result['seconds']:.1f} s), "
        f"peak RSS {result['peak_rss_mb']:.0f} MB (of which {result['rss_after_import_mb']:.0f}"
        f" MB after importing torch and building the model; the set itself would be "
        f"{result['rows'] * 16 * 4 / 2**20:.0f} MB)"
    )


def training_stream_section(args: argparse.Namespace) -> None:
    """Each mode in a fresh process, twice: as is (time, RSS), and with glibc returning
    every freed block of 1 MB or more to the OS, so that RSS follows what is allocated
    rather than what the allocator keeps for reuse."""
    results: dict[tuple[str, bool], dict[str, float]] = {}
    for mode in ("plain", "checkpoint", "two-pass"):
        for returned in (False, True):
            command = [sys.executable, __file__, "--child-train-stream", mode]
            command += ["--train-rows", str(args.train_rows), "--chunk", str(args.chunk)]
            command += ["--threads", str(args.threads)]
            env = dict(os.environ)
            if returned:
                env["MALLOC_MMAP_THRESHOLD_"] = str(2**20)
            out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            results[mode, returned] = json.loads(out.stdout.strip().splitlines()[-1])
    plain = results["plain", False]
    print(
        f"\n## training through chunks: one forward+backward on a {args.train_rows:,} x 16 set "
        f"({args.train_rows * 16 * 4 / 2**20:.0f} MB), chunks of {args.chunk:,}, "
        f"phi 16->64->64 (fresh process each; RSS growth after the set is in memory; "
        f"'returned': with MALLOC_MMAP_THRESHOLD_=1048576)\n"
        "| mode | seconds | time / kept | peak RSS growth MB | returned MB |\n"
        "|---|---|---|---|---|"
    )
    labels = {
        "plain": "forward_chunks, all activations kept",
        "checkpoint": "forward_chunks(checkpoint=True)",
        "two-pass": "backward_chunks (set never held)",
    }
    for mode, label in labels.items():
        r, lean = results[mode, False], results[mode, True]
        print(
            f"| {label} | {r['seconds']:.2f} | {r['seconds'] / plain['seconds']:.2f} | "
            f"{r['peak_growth_mb']:.0f} | {lean['peak_growth_mb']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=151)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=65_536)
    parser.add_argument("--no-rss", dest="rss", action="store_false")
    parser.add_argument("--no-streaming", dest="streaming", action="store_false")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    parser.add_argument("--child-stream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-train-stream", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_memory:
        memory_child(args.child_memory)
        return
    if args.child_stream:
        stream_child(args.rows, args.chunk)
        return
    if args.child_train_stream:
        train_stream_child(args.train_rows, args.chunk, args.child_train_stream)
        return
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"PyG {'available' if _pyg_aggr() is not None else 'not installed'}; "
        f"{args.repeats} rounds of interleaved forward+backward steps; ms are medians, "
        f"ratios of variants timed in the same rounds are medians of per-round ratios "
        f"[95 % bootstrap interval]"
    )
    batch_section(args, "skewed")
    batch_section(args, "uniform")
    if args.streaming:
        streaming_section(args)
        training_stream_section(args)


if __name__ == "__main__":
    main()
