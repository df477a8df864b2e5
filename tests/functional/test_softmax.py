"""``segment_softmax`` / ``masked_softmax``: checked against a per-set loop over
``torch.softmax`` of the expanded multiset, with NaN in padding, empty sets, and gradcheck."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from deepsets.functional import masked_softmax, segment_softmax

SIZES = st.lists(st.integers(0, 7), min_size=1, max_size=5)


def _offsets(sizes: list[int]) -> Tensor:
    return torch.tensor([0, *torch.tensor(sizes, dtype=torch.long).cumsum(0).tolist()])


def loop_softmax(logits: Tensor, sizes: list[int], counts: Tensor | None) -> Tensor:
    """Per set: softmax over the rows repeated ``counts`` times, each copy's share summed."""
    out, start = [], 0
    for n in sizes:
        block = logits[start : start + n]
        c = torch.ones(n, dtype=torch.long) if counts is None else counts[start : start + n]
        if int(c.sum()) == 0:
            out.append(torch.zeros_like(block))
        else:
            expanded = block.repeat_interleave(c, dim=0)
            shares = torch.softmax(expanded, dim=0)
            owner = torch.repeat_interleave(torch.arange(n), c)
            out.append(torch.zeros_like(block).index_add_(0, owner, shares))
        start += n
    return torch.cat(out) if out else logits[:0]


@given(
    sizes=SIZES,
    seed=st.integers(0, 2**31 - 1),
    columns=st.integers(1, 3),
    weighted=st.booleans(),
    form=st.sampled_from(["offsets", "index", "shuffled-index"]),
)
def test_segment_softmax_is_the_softmax_of_the_expanded_multiset(
    sizes: list[int], seed: int, columns: int, weighted: bool, form: str
) -> None:
    generator = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    logits = torch.randn(n, columns, generator=generator, dtype=torch.float64) * 5
    counts = torch.randint(0, 3, (n,), generator=generator) if weighted else None
    expected = loop_softmax(logits, sizes, counts)
    dirty = logits.clone()
    weights = None if counts is None else counts.to(torch.float64)
    if counts is not None:
        dirty[counts == 0] = float("nan")  # weight 0 is padding: never read
    if form == "offsets":
        out = segment_softmax(dirty, offsets=_offsets(sizes), weights=weights)
    else:
        index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        order = torch.randperm(n, generator=generator) if form == "shuffled-index" else None
        if order is None:
            order = torch.arange(n)
        out = torch.empty_like(expected)
        out[order] = segment_softmax(
            dirty[order],
            index=index[order],
            num_sets=len(sizes),
            weights=None if weights is None else weights[order],
        )
    torch.testing.assert_close(out, expected)


def test_log_weights_equal_weights_and_remove_rows_whatever_they_hold() -> None:
    logits = torch.tensor([1.0, float("nan"), 3.0, float("inf")])
    weights = torch.tensor([2.0, 0.0, 0.5, 0.0])
    offsets = torch.tensor([0, 2, 4])
    by_weights = segment_softmax(logits, offsets=offsets, weights=weights)
    log_w = torch.tensor([2.0, 0.0, 0.5, 1.0]).log().masked_fill(weights == 0, float("-inf"))
    by_logs = segment_softmax(logits, offsets=offsets, log_weights=log_w)
    torch.testing.assert_close(by_weights, torch.tensor([1.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(by_logs, by_weights)


def test_empty_and_all_removed_sets_are_zero_with_finite_gradients() -> None:
    logits = torch.tensor([[3.0], [-2.0], [1.0]], requires_grad=True)
    weights = torch.tensor([0.0, 0.0, 1.0])
    out = segment_softmax(logits, offsets=torch.tensor([0, 0, 2, 3]), weights=weights)
    torch.testing.assert_close(out, torch.tensor([[0.0], [0.0], [1.0]]))
    (out * torch.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())
    # rows of weight 0 get no gradient; a lone row's softmax is constant
    torch.testing.assert_close(logits.grad, torch.zeros(3, 1))


def test_huge_logits_are_stable() -> None:
    logits = torch.tensor([1000.0, 999.0, -1000.0, -1001.0])
    out = segment_softmax(logits, offsets=torch.tensor([0, 2, 4]))
    expected = torch.cat([torch.softmax(logits[:2] - 1000, 0), torch.softmax(logits[2:] + 1000, 0)])
    torch.testing.assert_close(out, expected)


def test_gradcheck_float64() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    # positive weights: gradcheck's finite differences would step a 0 weight below 0
    weights = torch.rand(9, generator=generator, dtype=torch.float64) + 0.1
    weights = weights.requires_grad_(True)
    offsets = torch.tensor([0, 3, 3, 7, 9])
    assert torch.autograd.gradcheck(
        lambda s, w: segment_softmax(s, offsets=offsets, weights=w), (logits, weights)
    )
    log_w = torch.randn(9, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s, lw: segment_softmax(s, offsets=offsets, log_weights=lw), (logits, log_w)
    )
    mask = torch.rand(2, 5, generator=generator, dtype=torch.float64) * 2
    mask[0] = 0  # an empty set
    padded = torch.randn(2, 3, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: masked_softmax(s, mask), (padded,))


@given(seed=st.integers(0, 2**31 - 1), size=st.integers(0, 6), bool_mask=st.booleans())
def test_masked_softmax_equals_segment_softmax(seed: int, size: int, bool_mask: bool) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 2, size, generator=generator, dtype=torch.float64)
    weights = torch.rand(3, size, generator=generator, dtype=torch.float64)
    weights[weights < 0.3] = 0
    mask = weights > 0 if bool_mask else weights
    dirty = logits.masked_fill(~(weights > 0)[:, None, :], float("nan"))
    out = masked_softmax(dirty, mask)
    assert not bool(out.isnan().any())
    rows = logits.permute(0, 2, 1).reshape(3 * size, 2)
    expected = segment_softmax(
        rows, offsets=torch.arange(4) * size, weights=mask.reshape(-1).to(torch.float64)
    )
    torch.testing.assert_close(out, expected.view(3, size, 2).permute(0, 2, 1))


def test_bad_input_names_the_argument() -> None:
    offsets = torch.tensor([0, 2])
    with pytest.raises(ValueError, match="at most one of weights and log_weights"):
        segment_softmax(
            torch.zeros(2), offsets=offsets, weights=torch.ones(2), log_weights=torch.zeros(2)
        )
    with pytest.raises(ValueError, match="weights must hold finite, non-negative"):
        segment_softmax(torch.zeros(2), offsets=offsets, weights=torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"logits must have shape \(N,\) or \(N, C\)"):
        segment_softmax(torch.zeros(2, 1, 1), offsets=offsets)
    with pytest.raises(ValueError, match="log_weights must be a floating tensor of shape"):
        segment_softmax(torch.zeros(2), offsets=offsets, log_weights=torch.zeros(3))
    with pytest.raises(ValueError, match="mask must have shape"):
        masked_softmax(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))
