"""``deepsets.functional.masked_pool``: the pooling semantics every model relies on.

Checked against a plain Python loop (no tensor ops over the set dimension) that reads the
semantics straight from the definition:

* sum  = Σ_i w_i x_i
* mean = Σ_i w_i x_i / Σ_i w_i
* max  = max over {i : w_i > 0} of x_i
* an empty set (no w_i > 0, or M == 0) pools to 0.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

import deepsets
from deepsets.functional import masked_pool

POOLS = ["sum", "mean", "max"]
MASK_KINDS = ["none", "bool", "weights", "counts"]


# ------------------------------------------------------------------------- helpers


def reference_pool(x: Tensor, pool: str, weights: Tensor | None) -> Tensor:
    """Element-by-element Python loop over the definition, in float64."""
    batch, size, dim = x.shape
    out = torch.zeros(batch, dim, dtype=torch.float64)
    for b in range(batch):
        for d in range(dim):
            members = [
                (float(x[b, i, d]), 1.0 if weights is None else float(weights[b, i]))
                for i in range(size)
            ]
            members = [(v, w) for v, w in members if w > 0]
            if not members:
                continue  # empty set: 0
            if pool == "sum":
                out[b, d] = sum(w * v for v, w in members)
            elif pool == "mean":
                out[b, d] = sum(w * v for v, w in members) / sum(w for _, w in members)
            else:
                out[b, d] = max(v for v, _ in members)
    return out


def make_mask(kind: str, batch: int, size: int, generator: torch.Generator) -> Tensor | None:
    """A random mask of the given kind, some rows possibly empty."""
    if kind == "none":
        return None
    keep = torch.rand(batch, size, generator=generator) < 0.6
    if kind == "bool":
        return keep
    if kind == "counts":
        return keep * torch.randint(1, 4, (batch, size), generator=generator).double()
    return keep * torch.rand(batch, size, generator=generator, dtype=torch.float64) * 3


@st.composite
def padded_batches(draw: st.DrawFn, min_size: int = 0) -> tuple[Tensor, Tensor | None, str]:
    batch = draw(st.integers(1, 4))
    size = draw(st.integers(min_size, 7))
    dim = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(MASK_KINDS))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(batch, size, dim, generator=generator, dtype=torch.float64) * 3
    return x, make_mask(kind, batch, size, generator), kind


class OpRecorder(TorchDispatchMode):
    """Records the name of every aten op that runs inside the ``with`` block."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.ops.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


MASKING_OPS = {"masked_fill", "masked_fill_", "where", "bmm", "any", "gt", "bitwise_not"}


def recorded_ops(fn: Any) -> set[str]:
    with OpRecorder() as recorder:
        fn()
    return set(recorder.ops)


# ------------------------------------------------------------ semantics vs the loop


@given(batch=padded_batches(), pool=st.sampled_from(POOLS))
def test_matches_the_python_loop_reference(
    batch: tuple[Tensor, Tensor | None, str], pool: str
) -> None:
    x, mask, _ = batch
    out = masked_pool(x, pool, mask)
    assert out.shape == (x.shape[0], x.shape[2])
    torch.testing.assert_close(out, reference_pool(x, pool, mask), atol=1e-12, rtol=1e-12)


@given(batch=padded_batches(), pool=st.sampled_from(POOLS), keepdim=st.booleans())
def test_keepdim_only_adds_the_set_dimension(
    batch: tuple[Tensor, Tensor | None, str], pool: str, keepdim: bool
) -> None:
    x, mask, _ = batch
    out = masked_pool(x, pool, mask, keepdim=keepdim)
    flat = masked_pool(x, pool, mask)
    if keepdim:
        assert out.shape == (x.shape[0], 1, x.shape[2])
        assert torch.equal(out.squeeze(1), flat)
    else:
        assert out.shape == (x.shape[0], x.shape[2])


def test_default_pool_is_sum() -> None:
    x = torch.randn(2, 5, 3)
    assert torch.equal(masked_pool(x), x.sum(dim=1))


def test_option_strings_are_case_insensitive_and_enums_work() -> None:
    from deepsets._validation import PoolType

    x = torch.randn(2, 5, 3)
    assert torch.equal(masked_pool(x, "MAX"), masked_pool(x, PoolType.MAX))
    assert torch.equal(masked_pool(x, "Mean"), x.mean(dim=1))


# -------------------------------------------------------------------- max and −∞


@given(
    seed=st.integers(0, 2**31 - 1),
    size=st.integers(2, 8),
    weighted=st.booleans(),
)
def test_max_of_all_negative_sets_ignores_padding(seed: int, size: int, weighted: bool) -> None:
    """Padding filled with 0 would win here; −∞ fill never does."""
    generator = torch.Generator().manual_seed(seed)
    x = -torch.rand(3, size, 2, generator=generator) - 0.1  # every value < 0
    keep = torch.zeros(3, size, dtype=torch.bool)
    keep[:, : size // 2] = True
    mask: Tensor = keep.double() * 2.5 if weighted else keep
    x = x.masked_fill(~keep.unsqueeze(-1), 0.0)  # padding holds 0, larger than any member
    out = masked_pool(x, "max", mask)
    assert bool((out < 0).all())
    torch.testing.assert_close(out, x[:, : size // 2].amax(dim=1))


def test_max_returns_negative_member_not_zero() -> None:
    x = torch.tensor([[[-0.3], [-0.8], [-0.1], [0.0], [0.0]]])
    mask = torch.tensor([[True, True, True, False, False]])
    assert masked_pool(x, "max", mask).item() == pytest.approx(-0.1)


# ----------------------------------------------------------------------- empty sets


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("kind", ["bool", "weights"])
def test_empty_sets_pool_to_zero_with_finite_gradients(pool: str, kind: str) -> None:
    x = torch.randn(3, 4, 2, requires_grad=True)
    mask = torch.tensor([[1.0, 0.5, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    if kind == "bool":
        mask = mask > 0
    out = masked_pool(x, pool, mask)
    assert torch.equal(out[1], torch.zeros(2))
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None
    assert bool(torch.isfinite(x.grad).all())
    assert torch.equal(x.grad[1], torch.zeros(4, 2))  # the empty set has no members


@pytest.mark.parametrize("pool", POOLS)
def test_zero_width_sets_pool_to_zero(pool: str) -> None:
    x = torch.randn(3, 0, 2, requires_grad=True)
    out = masked_pool(x, pool)
    assert torch.equal(out, torch.zeros(3, 2))
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


# -------------------------------------------------------------------------- padding


@given(
    batch=padded_batches(),
    pool=st.sampled_from(POOLS),
    padding=st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 7.0]),
)
def test_padding_values_never_matter(
    batch: tuple[Tensor, Tensor | None, str], pool: str, padding: float
) -> None:
    x, mask, _ = batch
    if mask is None:
        return  # no padding to vary
    inactive = ~(mask > 0).unsqueeze(-1)
    clean = masked_pool(x.masked_fill(inactive, 0.0), pool, mask)
    dirty = masked_pool(x.masked_fill(inactive, padding), pool, mask)
    assert torch.equal(clean, dirty)
    assert bool(torch.isfinite(dirty).all())


# ---------------------------------------------------------------- weighted multisets


@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    size=st.integers(1, 6),
    dim=st.integers(1, 3),
    pool=st.sampled_from(POOLS),
)
def test_counts_equal_the_expanded_multiset(
    seed: int, batch: int, size: int, dim: int, pool: str
) -> None:
    """A weight k on an element pools like k copies of it (weight 0: absent)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, dim, generator=generator, dtype=torch.float64)
    counts = torch.randint(0, 4, (batch, size), generator=generator)
    weighted = masked_pool(x, pool, counts.double())
    for b in range(batch):
        copies = [x[b, i] for i in range(size) for _ in range(int(counts[b, i]))]
        if not copies:
            assert torch.equal(weighted[b], torch.zeros(dim, dtype=torch.float64))
            continue
        expanded = torch.stack(copies).unsqueeze(0)  # (1, sum of counts, D), no mask
        torch.testing.assert_close(weighted[b], masked_pool(expanded, pool)[0])


@given(
    seed=st.integers(0, 2**31 - 1),
    size=st.integers(1, 6),
    scale=st.floats(0.01, 100.0),
)
def test_proportions_equal_counts_under_mean(seed: int, size: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, size, 3, generator=generator, dtype=torch.float64)
    counts = torch.randint(0, 5, (2, size), generator=generator).double()
    counts[:, 0] += 1  # no empty set: proportions need a total
    proportions = counts / counts.sum(dim=1, keepdim=True)
    by_counts = masked_pool(x, "mean", counts)
    torch.testing.assert_close(masked_pool(x, "mean", proportions), by_counts)
    torch.testing.assert_close(masked_pool(x, "mean", proportions * scale), by_counts)
    # ... while sum pooling does see the scale (it is a multiplicity, not a proportion)
    torch.testing.assert_close(
        masked_pool(x, "sum", counts * scale), masked_pool(x, "sum", counts) * scale
    )


@given(seed=st.integers(0, 2**31 - 1), pool=st.sampled_from(POOLS))
def test_bool_mask_equals_unit_weights(seed: int, pool: str) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 2, generator=generator, dtype=torch.float64)
    keep = torch.rand(3, 5, generator=generator) < 0.5
    torch.testing.assert_close(masked_pool(x, pool, keep), masked_pool(x, pool, keep.double()))


@given(seed=st.integers(0, 2**31 - 1), pool=st.sampled_from(POOLS))
def test_all_ones_mask_equals_no_mask(seed: int, pool: str) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 2, generator=generator, dtype=torch.float64)
    no_mask = masked_pool(x, pool)
    torch.testing.assert_close(masked_pool(x, pool, torch.ones(3, 5, dtype=torch.bool)), no_mask)
    torch.testing.assert_close(masked_pool(x, pool, torch.ones(3, 5, dtype=torch.float64)), no_mask)


# ---------------------------------------------------- mask=None does no masking work


@pytest.mark.parametrize("pool", POOLS)
def test_no_mask_runs_no_masking_ops(pool: str) -> None:
    """``mask=None`` is not the all-ones-mask path: no fill, select or weighting op runs."""
    x = torch.randn(4, 6, 3)
    ops_without = recorded_ops(lambda: masked_pool(x, pool))
    ops_with_ones = recorded_ops(lambda: masked_pool(x, pool, torch.ones(4, 6, dtype=torch.bool)))
    assert not ops_without & MASKING_OPS, ops_without
    # the recorder does see masking work when there is a mask (so the check above can fail)
    assert ops_with_ones & MASKING_OPS, ops_with_ones
    assert len(ops_without) == 1, ops_without  # one reduction: sum / mean / amax


# -------------------------------------------------------------------------- alias


def test_seed_alias_is_the_same_function() -> None:
    assert deepsets._masked_pool is masked_pool
    assert inspect.signature(deepsets._masked_pool) == inspect.signature(masked_pool)
    assert list(inspect.signature(masked_pool).parameters) == ["x", "pool_type", "mask", "keepdim"]
    assert deepsets.masked_pool is masked_pool


# ------------------------------------------------------------------------ gradcheck
#
# gradcheck compares autograd with central finite differences in float64. Where it
# applies, and what it cannot see:
# * sum / mean: smooth in x and in positive weights -> checked in both.
# * max: piecewise linear in x; away from ties it is checked. Weights only decide
#   membership (w > 0), a step function, so max has no gradient in the weights.
# * max with a tie of exactly two: amax splits the gradient 1/2 : 1/2, which is also
#   what central differences give ((eps - 0) / 2 eps), so gradcheck passes and checks it.
# * max with a tie of k >= 3: amax gives each member 1/k (a valid subgradient), central
#   differences give 1/2 to each, so gradcheck cannot apply; we check the split directly.
# * zero weights are left out of the weight gradcheck: a perturbation of -eps would be a
#   negative weight (rejected), and +eps changes membership (max) or which sets are empty.


def _gradcheck(fn: Any, *inputs: Tensor) -> bool:
    return bool(torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5))


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("kind", ["none", "bool", "weights"])
def test_gradcheck_in_x(pool: str, kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    # distinct values (spaced 0.1 apart), so max has no near-ties for eps to cross
    values = torch.randperm(3 * 5 * 2, generator=generator).double() / 10
    x = values.view(3, 5, 2).requires_grad_(True)
    mask = make_mask(kind, 3, 5, generator)
    if mask is not None:
        mask[1] = 0  # one empty set
    assert _gradcheck(lambda t: masked_pool(t, pool, mask), x)


@pytest.mark.parametrize("pool", ["sum", "mean"])
def test_gradcheck_in_weights(pool: str) -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = (torch.rand(3, 5, generator=generator, dtype=torch.float64) + 0.5).requires_grad_(
        True
    )
    assert _gradcheck(lambda t, w: masked_pool(t, pool, w), x, weights)


def test_max_has_no_gradient_in_the_weights() -> None:
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    weights = torch.rand(2, 4, dtype=torch.float64).requires_grad_(True)
    out = masked_pool(x, "max", weights)
    assert not out.requires_grad  # membership is w > 0: no path back to the weights


@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_max_with_a_tie_of_two(masked: bool) -> None:
    x = torch.tensor([[[1.0], [3.0], [3.0], [-2.0], [3.0]]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, False]]) if masked else None
    if not masked:
        x[0, 4, 0] = 0.5  # keep the tie at exactly two members
    x.requires_grad_(True)
    assert _gradcheck(lambda t: masked_pool(t, "max", mask), x)
    masked_pool(x, "max", mask).sum().backward()
    assert x.grad is not None
    assert x.grad[0, :, 0].tolist() == [0.0, 0.5, 0.5, 0.0, 0.0]


def test_max_with_a_tie_of_three_splits_the_gradient_evenly() -> None:
    x = torch.tensor([[[2.0], [5.0], [5.0], [5.0], [9.0]]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 2.0, 0.5, 1.0, 0.0]])  # the 9 is padding
    x.requires_grad_(True)
    masked_pool(x, "max", mask).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(
        x.grad[0, :, 0], torch.tensor([0.0, 1 / 3, 1 / 3, 1 / 3, 0.0], dtype=torch.float64)
    )
