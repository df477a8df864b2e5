"""Data helpers: pad_sets, pack_sets, collate and the size-bucketing batch sampler."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from deepsets import DeepSetsInvariant
from deepsets.ragged import BucketBatchSampler, collate, pack_sets, pad_sets

SIZES = st.lists(st.integers(0, 40), min_size=1, max_size=8)


@given(sizes=SIZES, seed=st.integers(0, 2**31 - 1))
def test_pad_and_pack_round_trip(sizes: list[int], seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    sets = [torch.randn(n, 3, generator=generator) for n in sizes]
    weights = [torch.rand(n, generator=generator) for n in sizes]
    x, mask = pad_sets(sets)
    assert x.shape == (len(sizes), max(sizes), 3) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == sizes
    for b, s in enumerate(sets):
        assert torch.equal(x[b, : len(s)], s)
        assert x[b, len(s) :].abs().sum() == 0
    _, w_pad = pad_sets(sets, weights)
    for b, w in enumerate(weights):
        assert torch.equal(w_pad[b, : len(w)], w) and w_pad[b, len(w) :].abs().sum() == 0

    packed = pack_sets(sets)
    assert packed.is_nested and packed.layout == torch.jagged
    assert packed.shape[0] == len(sizes) and packed.shape[2] == 3
    assert torch.equal(packed.values(), torch.cat(sets))
    assert (packed.offsets()[1:] - packed.offsets()[:-1]).tolist() == sizes
    packed_x, packed_w = pack_sets(sets, weights)
    assert packed_w.shape[:2] == packed_x.shape[:2]  # the same ragged structure
    assert torch.equal(packed_w.values(), torch.cat(weights))


def test_errors_name_the_offending_set() -> None:
    sets = [torch.randn(2, 3), torch.randn(4, 3), torch.randn(1, 5)]
    for helper in (pad_sets, pack_sets):
        with pytest.raises(ValueError, match=r"sets\[2\] has 5 features but sets\[0\] has 3"):
            helper(sets)
        with pytest.raises(ValueError, match=r"sets\[1\] must have shape \(n, D\)"):
            helper([torch.randn(2, 3), torch.randn(3)])
        with pytest.raises(ValueError, match="at least one set"):
            helper([])
        with pytest.raises(TypeError, match="sets must be a list of"):
            helper(torch.randn(2, 3, 3))
        with pytest.raises(ValueError, match=r"sets\[1\] has dtype torch.float64"):
            helper([torch.randn(2, 3), torch.randn(2, 3, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(4,\)"):
        pad_sets(sets[:2], [torch.ones(2), torch.ones(3)])
    with pytest.raises(ValueError, match="one tensor per set"):
        pack_sets(sets[:2], [torch.ones(2)])


@pytest.mark.parametrize("form", ["packed", "padded"])
def test_collate_in_a_dataloader(form: str) -> None:
    torch.manual_seed(0)
    sizes = [3, 0, 7, 2, 5]
    data = [(torch.randn(n, 4), torch.tensor(float(n))) for n in sizes]
    loader = DataLoader(data, batch_size=5, collate_fn=partial(collate, form=form))
    model = DeepSetsInvariant(4, [8], [4], 1, pool_type="mean")
    (batch,) = list(loader)
    sets, targets = batch
    assert torch.equal(targets, torch.tensor([float(n) for n in sizes]))
    out = model(sets) if form == "packed" else model(*sets)
    expected = torch.cat([model(x.unsqueeze(0)) for x, _ in data])
    torch.testing.assert_close(out, expected)
    bare = collate([x for x, _ in data], form=form)
    if form == "packed":
        assert bare.is_nested
    else:
        assert bare[0].shape == (5, 7, 4)


def test_collate_rejects_unknown_forms() -> None:
    with pytest.raises(ValueError, match="form must be one of 'padded', 'packed'; got 'dense'"):
        collate([torch.randn(2, 3)], form="dense")


@given(
    sizes=st.lists(st.integers(0, 500), min_size=1, max_size=300),
    batch_size=st.integers(1, 32),
    pool_batches=st.integers(1, 10),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_bucket_sampler_covers_every_index_once(
    sizes: list[int], batch_size: int, pool_batches: int, drop_last: bool, seed: int
) -> None:
    sampler = BucketBatchSampler(
        sizes,
        batch_size,
        pool_batches=pool_batches,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
    )
    batches = list(sampler)
    assert len(batches) == len(sampler)
    seen = [i for batch in batches for i in batch]
    assert len(seen) == len(set(seen))
    assert all(1 <= len(b) <= batch_size for b in batches)
    if not drop_last:
        assert sorted(seen) == list(range(len(sizes)))
    else:
        assert all(len(b) == batch_size for b in batches)


def test_bucket_sampler_reduces_padding() -> None:
    generator = torch.Generator().manual_seed(0)
    sizes = torch.distributions.LogNormal(3.5, 1.0).sample((2000,)).long().clamp(max=1000)

    def waste(batches: list[list[int]]) -> int:
        return sum(int(sizes[b].max() * len(b) - sizes[b].sum()) for b in batches)

    bucketed = list(BucketBatchSampler(sizes, 32, generator=generator))
    random = torch.randperm(2000, generator=generator).split(32)
    assert waste(bucketed) < waste([r.tolist() for r in random]) / 4
    # a new epoch is a new order
    assert list(BucketBatchSampler(sizes, 32, generator=generator)) != bucketed


def test_bucket_sampler_errors() -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        BucketBatchSampler([1, 2], 0)
    with pytest.raises(ValueError, match="sizes must be a 1-D sequence of non-negative"):
        BucketBatchSampler([1, -2], 2)
