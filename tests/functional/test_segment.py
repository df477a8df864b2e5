"""``deepsets.functional.segment_pool``: packed rows pooled by CSR offsets or a row index.

Checked against a Python loop over the sets (each pooled by plain tensor ops on its own
rows) and against ``masked_pool`` on the padded batch, for outputs and gradients.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from deepsets import pad_sets
from deepsets.functional import masked_pool, segment_pool

POOLS = ["sum", "mean", "max"]
SIZES = st.lists(st.one_of(st.integers(0, 5), st.integers(0, 1000)), min_size=1, max_size=6)


def _offsets(sizes: list[int]) -> Tensor:
    return torch.tensor([0, *torch.tensor(sizes, dtype=torch.long).cumsum(0).tolist()])


def loop_pool(sets: list[Tensor], pool: str, weights: list[Tensor] | None) -> Tensor:
    """One set at a time, straight from the definition; empty sets give 0."""
    rows = []
    for b, s in enumerate(sets):
        w = torch.ones(s.shape[0], dtype=s.dtype) if weights is None else weights[b]
        keep = w > 0
        if not bool(keep.any()):
            rows.append(s[keep].sum(0))  # zeros, still connected to the graph
        elif pool == "sum":
            rows.append((w[keep, None] * s[keep]).sum(0))
        elif pool == "mean":
            rows.append((w[keep, None] * s[keep]).sum(0) / w[keep].sum())
        else:
            rows.append(s[keep].amax(0))
    return torch.stack(rows)


@given(
    sizes=SIZES,
    seed=st.integers(0, 2**31 - 1),
    pool=st.sampled_from(POOLS),
    weighted=st.booleans(),
    form=st.sampled_from(["offsets", "index", "shuffled-index"]),
)
def test_segment_pool_equals_loop_and_padded(
    sizes: list[int], seed: int, pool: str, weighted: bool, form: str
) -> None:
    generator = torch.Generator().manual_seed(seed)
    dim = 3
    values = torch.randn(sum(sizes), dim, generator=generator, dtype=torch.float64)
    weights = None
    if weighted:
        weights = torch.rand(sum(sizes), generator=generator, dtype=torch.float64) * 2
        weights[torch.rand(sum(sizes), generator=generator) < 0.3] = 0
    offsets = _offsets(sizes)
    index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))

    # padding rows (weight 0) may hold NaN: never in the result or the gradient
    dirty = values.clone()
    if weights is not None:
        dirty[weights == 0] = float("nan")
    dirty.requires_grad_(True)
    if form == "offsets":
        out = segment_pool(dirty, pool, offsets=offsets, weights=weights)
    else:
        order = torch.randperm(values.shape[0], generator=generator)
        if form == "index":
            order = torch.arange(values.shape[0])
        out = segment_pool(
            dirty[order],
            pool,
            index=index[order],
            weights=None if weights is None else weights[order],
            num_sets=len(sizes),
        )
    probe = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    (out * probe).sum().backward()
    assert dirty.grad is not None and torch.isfinite(dirty.grad).all()

    clean = values.clone().requires_grad_(True)
    sets = list(clean.split(sizes))
    split_w = None if weights is None else list(weights.split(sizes))
    expected = loop_pool(sets, pool, split_w)
    torch.testing.assert_close(out, expected)
    (expected * probe).sum().backward()
    torch.testing.assert_close(dirty.grad, clean.grad)

    x_pad, mask = pad_sets(list(values.split(sizes)), split_w)
    torch.testing.assert_close(out, masked_pool(x_pad, pool, mask))


@pytest.mark.parametrize("pool", POOLS)
def test_empty_sets_and_empty_input(pool: str) -> None:
    values = torch.randn(0, 4, requires_grad=True)
    out = segment_pool(values, pool, offsets=torch.zeros(3, dtype=torch.long))
    assert out.shape == (2, 4) and out.abs().max() == 0
    out.sum().backward()
    out = segment_pool(values, pool, index=torch.zeros(0, dtype=torch.long), num_sets=2)
    assert out.shape == (2, 4) and out.abs().max() == 0


@pytest.mark.parametrize("pool", POOLS)
def test_index_form_is_pyg_compatible(pool: str) -> None:
    """PyG's ``global_*_pool(x, batch, size)``: unsorted batch, trailing empty sets are 0."""
    values = torch.tensor([[1.0, -2.0], [3.0, -1.0], [-5.0, 4.0], [2.0, 2.0]])
    batch = torch.tensor([2, 0, 2, 0])
    out = segment_pool(values, pool, index=batch, num_sets=4)
    first = values[[1, 3]]
    third = values[[0, 2]]
    reduce = {"sum": lambda t: t.sum(0), "mean": lambda t: t.mean(0), "max": lambda t: t.amax(0)}
    expected = torch.stack(
        [reduce[pool](first), torch.zeros(2), reduce[pool](third), torch.zeros(2)]
    )
    torch.testing.assert_close(out, expected)
    assert segment_pool(values, pool, index=batch).shape == (3, 2)  # num_sets = max + 1


def test_max_ties_share_the_gradient_like_amax() -> None:
    values = torch.tensor([[1.0], [1.0], [0.5], [2.0]], requires_grad=True)
    for kwargs in ({"offsets": torch.tensor([0, 3, 4])}, {"index": torch.tensor([0, 0, 0, 1])}):
        values.grad = None
        segment_pool(values, "max", **kwargs).sum().backward()
        assert values.grad is not None
        torch.testing.assert_close(values.grad, torch.tensor([[0.5], [0.5], [0.0], [1.0]]))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("pool", ["sum", "mean"])
def test_low_precision_accumulates_in_float32(dtype: torch.dtype, pool: str) -> None:
    values = torch.full((20_000, 1), 0.1, dtype=dtype)
    out = segment_pool(values, pool, offsets=torch.tensor([0, 20_000]))
    assert out.dtype == dtype
    exact = values.double().sum() if pool == "sum" else values.double().mean()
    torch.testing.assert_close(out.double()[0, 0], exact, rtol=1e-2, atol=0)


def test_errors_name_the_argument() -> None:
    values = torch.randn(5, 2)
    with pytest.raises(ValueError, match=r"exactly one of offsets .* got neither"):
        segment_pool(values, "sum")
    with pytest.raises(ValueError, match="got both"):
        segment_pool(values, "sum", offsets=torch.tensor([0, 5]), index=torch.zeros(5).long())
    with pytest.raises(ValueError, match=r"values must have shape \(N, D\)"):
        segment_pool(torch.randn(5), "sum", offsets=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="offsets must start at 0 and end at N = 5"):
        segment_pool(values, "sum", offsets=torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="offsets must be non-decreasing"):
        segment_pool(values, "sum", offsets=torch.tensor([0, 4, 2, 5]))
    with pytest.raises(ValueError, match=r"offsets must be a 1-D integer tensor"):
        segment_pool(values, "sum", offsets=torch.tensor([0.0, 5.0]))
    with pytest.raises(ValueError, match=r"index must have shape \(N,\) = \(5,\)"):
        segment_pool(values, "sum", index=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"index must lie in \[0, num_sets\) = \[0, 2\)"):
        segment_pool(values, "sum", index=torch.tensor([0, 1, 2, 0, 1]), num_sets=2)
    with pytest.raises(ValueError, match="num_sets must equal len"):
        segment_pool(values, "sum", offsets=torch.tensor([0, 5]), num_sets=3)
    with pytest.raises(ValueError, match=r"weights must have shape \(N,\) = \(5,\)"):
        segment_pool(values, "sum", offsets=torch.tensor([0, 5]), weights=torch.ones(4))
    with pytest.raises(ValueError, match="weights must hold finite, non-negative weights"):
        segment_pool(values, "sum", offsets=torch.tensor([0, 5]), weights=-torch.ones(5))
    with pytest.raises(ValueError, match="pool_type must be one of 'sum', 'mean', 'max'"):
        segment_pool(values, "median", offsets=torch.tensor([0, 5]))
    with pytest.raises(TypeError, match="values must be a floating-point tensor"):
        segment_pool(torch.ones(5, 2, dtype=torch.long), "sum", offsets=torch.tensor([0, 5]))
