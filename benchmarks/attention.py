"""Attention on variable-size sets: packed PMA / ISAB vs padded + mask vs PyG.

The skewed batch of ``benchmarks/ragged.py`` (256 sets, log-normal sizes, mean ≈ 64,
largest 1000; its generator), 64 features per element, 4 heads, forward+backward of the
sum of the output:

* ``PMA``      — ``PMA(64, num_seeds=1)``;
* ``ISAB+PMA`` — ``ISAB(64, 64, num_inducing=16)`` then ``PMA(64)``;
* ``SAB``      — ``SAB(64, 64)``, all pairs (opt-in: ``--blocks SAB``; padded to the
  largest set it holds 256 × 1000² logits per head, several GB). Not measured yet: with
  one thread on the shared 2-core machine, 3 rounds of the padded and PyG variants did
  not finish in 10 minutes (``--repeats 3 --threads 1``; about 10 GB in use).

Variants:

* ``padded`` — ``block(x, mask)`` on the batch padded to the largest set;
* ``packed`` — ``block(rows, offsets=...)`` on the packed rows (PMA: a segment softmax over
  the rows; ISAB: tiles of 32 rows of one set; SAB: sets grouped by size within a factor
  of 2, each group padded to its largest set; none pads to the largest set);
* ``pyg``    — PyG's ``SetTransformerAggregation(64, num_encoder_blocks=0,
  num_decoder_blocks=0)`` (its PMA) for ``PMA``; ``to_dense_batch`` + its
  ``InducedSetAttentionBlock`` + ``PoolingByMultiheadAttention`` for ``ISAB+PMA``, and
  its ``SetAttentionBlock`` for ``SAB`` (all pad to the largest set internally). Only
  when ``torch_geometric`` is importable; it is not a dependency: ``pip install --target
  /tmp/pyg torch_geometric`` and run with ``PYTHONPATH=...:/tmp/pyg``.

Timing as in ``benchmarks/ragged.py``: variants interleaved, one step each per round; ms are
medians, ratios are medians of per-round ratios with a 95 % bootstrap interval. Memory:
bytes autograd saves for backward (``deepsets.testing.saved_tensor_bytes``).

On a shared 2-core machine use ``--threads 1``: with 2 intra-op threads every small
operation waits for a descheduled thread, which penalises the many small operations of the
packed paths far more than the few huge matmuls of the padded ones (measured: packed PMA
81 ms per step with one thread, 854 ms with two, on the same loaded machine). One thread,
torch 2.13 CPU, 15 rounds:

| block | padded ms | packed ms | pyg ms | padded / packed | pyg / packed |
|---|---|---|---|---|---|
| PMA | 1629.5 | 70.0 | 3692.8 | 23.3 [22.7, 25.1] | 51.2 [48.6, 57.4] |
| ISAB+PMA | 6868.9 | 255.6 | 7464.6 | 24.1 [23.8, 29.4] | 30.3 [26.7, 32.8] |

Saved for backward: PMA 195.8 MB padded, 16.4 MB packed (0.084), 316.8 MB PyG; ISAB+PMA
765.1 / 67.4 (0.088) / 833.0 MB.

Two threads on the same machine with nothing else running (``--threads 2 --repeats 9``,
1 min 53 s): the ratios hold; only a loaded machine shrinks them.

| block | padded ms | packed ms | pyg ms | padded / packed | pyg / packed |
|---|---|---|---|---|---|
| PMA | 490.1 | 20.4 | 1019.7 | 25.3 [20.2, 30.8] | 52.7 [42.9, 71.4] |
| ISAB+PMA | 2588.9 | 124.5 | 2959.3 | 20.1 [19.1, 23.0] | 23.8 [22.8, 27.2] |

    python benchmarks/attention.py [--threads 2] [--repeats 31] [--blocks PMA ISAB+PMA SAB]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deepsets import ISAB, PMA, SAB, pack_sets, pad_sets
from deepsets.testing import saved_tensor_bytes
from ragged import (
    BATCH,
    ratio_with_interval,
    skewed_sizes,
    time_interleaved,
)

WIDTH = 64
HEADS = 4
INDUCING = 16
BLOCKS = ["PMA", "ISAB+PMA", "SAB"]
DEFAULT_BLOCKS = ["PMA", "ISAB+PMA"]


def _pyg() -> Any:
    """``(aggr, utils, to_dense_batch)`` from PyG, or ``None`` (an optional comparison)."""
    try:
        from torch_geometric.nn import aggr
        from torch_geometric.nn.aggr import utils
        from torch_geometric.utils import to_dense_batch
    except Exception:  # pragma: no cover - depends on the environment
        return None
    return aggr, utils, to_dense_batch


def _ours(block: str) -> nn.Module:
    torch.manual_seed(0)
    if block == "PMA":
        return PMA(WIDTH, num_heads=HEADS)
    if block == "SAB":
        return SAB(WIDTH, WIDTH, num_heads=HEADS)
    return nn.ModuleDict(
        {
            "isab": ISAB(WIDTH, WIDTH, num_inducing=INDUCING, num_heads=HEADS),
            "pma": PMA(WIDTH, num_heads=HEADS),
        }
    )


def _run(model: nn.Module, x: Tensor, mask: Tensor | None = None) -> Tensor:
    """The padded batch (``mask``), or packed rows (``mask``: the CSR offsets)."""
    if mask is not None and not mask.dtype.is_floating_point and mask.dim() == 1:
        return _run_packed(model, x, mask)
    if isinstance(model, (PMA, SAB)):
        return model(x, mask)
    return model["pma"](model["isab"](x, mask), mask)


def _run_packed(model: nn.Module, rows: Tensor, offsets: Tensor) -> Tensor:
    if isinstance(model, (PMA, SAB)):
        return model(rows, offsets=offsets)
    return model["pma"](model["isab"](rows, offsets=offsets), offsets=offsets)


def _pyg_step(block: str, values: Tensor, index: Tensor, num_sets: int) -> Callable[[], Tensor]:
    aggr, utils, to_dense_batch = _pyg()
    torch.manual_seed(0)
    if block == "PMA":
        pool = aggr.SetTransformerAggregation(
            WIDTH, heads=HEADS, num_encoder_blocks=0, num_decoder_blocks=0, layer_norm=False
        )
        return lambda: pool(values, index, dim_size=num_sets).sum()
    if block == "SAB":
        sab = utils.SetAttentionBlock(WIDTH, heads=HEADS, layer_norm=False)

        def sab_step() -> Tensor:
            dense, mask = to_dense_batch(values, index, batch_size=num_sets)
            return sab(dense, mask)[mask].sum()  # the real rows, as the other variants

        return sab_step
    isab = utils.InducedSetAttentionBlock(WIDTH, INDUCING, heads=HEADS, layer_norm=False)
    pma = utils.PoolingByMultiheadAttention(WIDTH, 1, heads=HEADS, layer_norm=False)

    def step() -> Tensor:
        dense, mask = to_dense_batch(values, index, batch_size=num_sets)
        return pma(isab(dense, mask), mask).sum()

    return step


def steps(block: str, sizes: list[int], with_pyg: bool = True) -> dict[str, Callable[[], Tensor]]:
    """One forward (returns a scalar) per variant; the caller runs backward."""
    model = _ours(block)
    generator = torch.Generator().manual_seed(1)
    sets = [torch.randn(n, WIDTH, generator=generator) for n in sizes]
    x_pad, mask = pad_sets(sets)
    packed = pack_sets(sets)
    values, offsets = packed.values(), packed.offsets()
    variants: dict[str, Callable[[], Tensor]] = {
        "padded": lambda: _run(model, x_pad, mask).sum(),
        "packed": lambda: _run(model, values, offsets).sum(),
    }
    if with_pyg and _pyg() is not None:
        index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        variants["pyg"] = _pyg_step(block, values, index, len(sizes))
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--blocks", nargs="+", choices=BLOCKS, default=DEFAULT_BLOCKS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = skewed_sizes()
    n = sum(sizes)
    with_pyg = _pyg() is not None
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"PyG {'available' if with_pyg else 'not installed'}; skewed batch: {BATCH} sets, "
        f"mean size {n / BATCH:.1f}, largest {max(sizes)}, {n} real rows, padded to "
        f"{BATCH * max(sizes)} rows; width {WIDTH}, {HEADS} heads, m = {INDUCING}; "
        f"{args.repeats} rounds of interleaved forward+backward steps; ms are medians, ratios "
        f"are medians of per-round ratios [95 % bootstrap interval]\n"
    )
    header = "| block | padded ms | packed ms |" + (" pyg ms |" if with_pyg else "")
    header += " padded / packed |" + (" pyg / packed |" if with_pyg else "")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    memory = []
    for block in args.blocks:
        variants = steps(block, sizes)
        t = time_interleaved(variants, args.repeats)
        ms = {k: statistics.median(v) * 1e3 for k, v in t.items()}
        row = f"| {block} | {ms['padded']:.1f} | {ms['packed']:.1f} |"
        if with_pyg:
            row += f" {ms['pyg']:.1f} |"
        row += f" {ratio_with_interval(t, 'padded', 'packed')} |"
        if with_pyg:
            row += f" {ratio_with_interval(t, 'pyg', 'packed')} |"
        print(row, flush=True)
        memory.append((block, {k: saved_tensor_bytes(v) / 2**20 for k, v in variants.items()}))
    print(
        "\n| block | saved for backward: padded MB | packed MB |"
        + (" pyg MB |" if with_pyg else "")
        + " packed / padded |"
    )
    print("|---|---|---|---|" + ("---|" if with_pyg else ""))
    for block, saved in memory:
        row = f"| {block} | {saved['padded']:.1f} | {saved['packed']:.1f} |"
        if with_pyg:
            row += f" {saved['pyg']:.1f} |"
        print(row + f" {saved['packed'] / saved['padded']:.3f} |")


if __name__ == "__main__":
    main()
