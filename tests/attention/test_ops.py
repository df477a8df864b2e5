"""The attention kernels against a dense reference: the tile layout of packed rows, and the
shared-query attention over packed rows and over tiles against one softmax per set."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from deepsets.attention._ops import (
    TILE,
    Packed,
    bucket_rows,
    shared_query_attention,
    tile_rows,
    tiled_shared_attention,
)

HEADS, WIDTH, QUERIES = 2, 3, 4
#: empty sets, sets within one tile, and sets spanning several tiles
SIZES = st.lists(st.one_of(st.integers(0, 5), st.integers(0, 3 * TILE + 1)), min_size=1, max_size=5)


def _packed(sizes: list[int], seed: int, *, weighted: bool) -> Packed:
    """Rows of every set in a random order, with integer weights (0: a row to ignore)."""
    generator = torch.Generator().manual_seed(seed)
    rows = sum(sizes)
    set_index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    order = torch.randperm(rows, generator=generator)
    x = torch.randn(rows, HEADS * WIDTH, generator=generator, dtype=torch.float64)
    if not weighted:
        return Packed(x, set_index[order], len(sizes), None, None, None)
    weights = torch.randint(0, 3, (rows,), generator=generator).to(torch.float64)
    bias = torch.where(weights > 0, weights.clamp(min=1).log(), float("-inf"))
    x = x.masked_fill((weights == 0).unsqueeze(-1), 0.0)
    return Packed(x, set_index[order], len(sizes), bias, weights > 0, None)


def _dense(q: Tensor, sets: Packed, scale: float) -> Tensor:
    """One softmax per set and head over that set's rows, set by set: the reference."""
    out = torch.zeros(sets.num_sets, QUERIES, HEADS * WIDTH, dtype=q.dtype)
    k = sets.x.unflatten(-1, (HEADS, WIDTH))
    for s in range(sets.num_sets):
        mine = sets.set_index == s
        bias = torch.zeros(int(mine.sum())) if sets.bias is None else sets.bias[mine]
        keep = bias > float("-inf")
        if not bool(keep.any()):
            continue  # no element of positive weight: the empty sum, 0
        keys = k[mine][keep]  # (n, H, d)
        logits = torch.einsum("qhd,nhd->hqn", q, keys) * scale + bias[keep]
        out[s] = torch.einsum("hqn,nhd->qhd", logits.softmax(-1), keys).flatten(-2)
    return out


@given(sizes=SIZES, seed=st.integers(0, 2**31 - 1))
def test_tiles_hold_every_row_once_and_at_most_tile_minus_one_empty_slots_per_set(
    sizes: list[int], seed: int
) -> None:
    sets = _packed(sizes, seed, weighted=True)
    tiles = tile_rows(sets)
    nonempty_sets = sum(1 for n in sizes if n)
    assert tiles.x.shape[:2] == (sum(-(-n // TILE) for n in sizes), TILE)
    assert tiles.x.shape[0] * TILE <= sum(sizes) + nonempty_sets * (TILE - 1)
    torch.testing.assert_close(tiles.rows(tiles.x), sets.x)  # the rows come back in order
    assert bool((tiles.tile_set[tiles.row_tile] == sets.set_index).all())
    slots = torch.zeros(tiles.x.shape[:2], dtype=torch.long)
    slots.index_put_((tiles.row_tile, tiles.row_slot), torch.ones_like(sets.set_index), True)
    assert bool((slots <= 1).all())  # no two rows share a slot
    assert bool((tiles.active == (tiles.bias > float("-inf"))).all())
    assert int(tiles.active.sum()) == int(sets.active.sum())  # type: ignore[union-attr]


@given(sizes=SIZES, seed=st.integers(0, 2**31 - 1), weighted=st.booleans())
def test_shared_queries_over_rows_and_over_tiles_are_one_softmax_per_set(
    sizes: list[int], seed: int, weighted: bool
) -> None:
    sets = _packed(sizes, seed, weighted=weighted)
    generator = torch.Generator().manual_seed(seed + 1)
    q = torch.randn(QUERIES, HEADS, WIDTH, generator=generator, dtype=torch.float64)
    scale = 0.7
    expected = _dense(q, sets, scale)
    k = sets.x.unflatten(-1, (HEADS, WIDTH))
    torch.testing.assert_close(shared_query_attention(q, k, k, sets, scale), expected)
    tiles = tile_rows(sets)
    tiled = tiles.x.unflatten(-1, (HEADS, WIDTH))
    torch.testing.assert_close(tiled_shared_attention(q, tiled, tiled, tiles, scale), expected)


@given(sizes=SIZES, seed=st.integers(0, 2**31 - 1))
def test_size_buckets_hold_every_row_once_and_pad_each_set_below_twice_its_size(
    sizes: list[int], seed: int
) -> None:
    sets = _packed(sizes, seed, weighted=True)
    buckets = bucket_rows(sets)
    rows = torch.cat([b.rows for b in buckets]) if buckets else torch.zeros(0, dtype=torch.long)
    assert sorted(rows.tolist()) == list(range(sum(sizes)))  # every row, once
    for bucket in buckets:
        padded = bucket.padded
        torch.testing.assert_close(padded.x[bucket.where], sets.x[bucket.rows])
        members = sets.set_index[bucket.rows].unique()
        smallest = min(sizes[s] for s in members.tolist())
        assert padded.x.shape[:2] == (len(members), max(sizes[s] for s in members.tolist()))
        assert padded.x.shape[1] < 2 * smallest
        slots = torch.zeros(padded.x.shape[:2], dtype=torch.long)
        slots.index_put_(bucket.where, torch.ones_like(bucket.rows), True)
        assert bool((slots <= 1).all())  # no two rows share a slot
        # the bucket's padding, and its rows of weight 0, are masked out of the attention
        expected = torch.zeros(padded.x.shape[:2], dtype=torch.bool)
        expected[bucket.where] = sets.active[bucket.rows]  # type: ignore[index]
        assert bool((padded.active == expected).all())  # type: ignore[union-attr]
