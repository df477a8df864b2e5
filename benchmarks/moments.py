"""``pooled_outer`` on packed sets (rows scattered into a zero batch for one batched product,
when that intermediate is the smaller) vs the segment sum of flattened per-row outer
products, and vs the padded batch.

Forward+backward of :math:`\\sum_n u_n u_n^\\top` per set, the variants timed interleaved
in one run; medians and the ratios to the flat segment sum are printed.

    python benchmarks/moments.py [--sets 64] [--max-size 128] [--features 16] [--repeats 30]
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from deepsets import pack_sets, pad_sets
from deepsets.functional import pooled_outer, segment_pool
from pooling import time_interleaved  # run as a script: benchmarks/ is on sys.path


def flat_segment_sum(rows: Tensor, offsets: Tensor) -> Tensor:
    """The other kernel: per-row outer products ``(N, D²)``, flattened, summed per set."""
    outer = (rows.unsqueeze(-1) * rows.unsqueeze(-2)).flatten(1)
    return segment_pool(outer, "sum", offsets=offsets)


def jagged_step(packed: Tensor) -> Tensor:
    packed.grad = None  # torch cannot accumulate into a nested tensor's .grad
    return pooled_outer(packed)


def run(dtype: torch.dtype, args: argparse.Namespace) -> None:
    sizes = torch.randint(1, args.max_size + 1, (args.sets,)).tolist()
    sets = [torch.randn(n, args.features, dtype=dtype) for n in sizes]
    packed = pack_sets(sets).requires_grad_(True)
    rows = packed.values().detach().requires_grad_(True)
    offsets = packed.offsets()
    padded, mask = pad_sets(sets)
    padded.requires_grad_(True)
    n = len(sizes)
    index = torch.repeat_interleave(torch.arange(n), torch.tensor(sizes))
    steps = {
        "flat products + segment sum": lambda: flat_segment_sum(rows, offsets),
        "pooled_outer, packed rows": lambda: pooled_outer(rows, offsets=offsets),
        "pooled_outer, index rows": lambda: pooled_outer(rows, index=index, num_sets=n),
        "pooled_outer, jagged nested": lambda: jagged_step(packed),
        "pooled_outer, padded + mask": lambda: pooled_outer(padded, weights=mask),
    }
    result = time_interleaved(steps, args.repeats)
    base = result["flat products + segment sum"]
    print(
        f"{dtype}, {args.sets} sets of 1..{args.max_size} rows (N = {sum(sizes)}), "
        f"D = {args.features}, threads = {torch.get_num_threads()}"
    )
    for name, seconds in result.items():
        print(f"  {name:30s} {seconds * 1e6:9.0f} µs  ×{seconds / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=64)
    parser.add_argument("--max-size", type=int, default=128)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        run(dtype, args)


if __name__ == "__main__":
    main()
