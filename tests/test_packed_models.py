"""Packed (``torch.nested`` jagged) input to every model: packed == padded + mask == a loop.

For random lists of set sizes (0 included, up to ~1000 elements) every model and pooling
is run three ways on the same sets — packed, padded with a mask, and one set at a time —
and the outputs and the gradients (input and parameters) must agree. Weighted sets use
jagged weights with zeros; the rows of weight 0 hold NaN in the packed and padded forms
and are simply left out in the loop, so the test also shows that they never leak.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn

from deepsets import (
    DeepSetsConditional,
    DeepSetsEquivariant,
    DeepSetsInvariant,
    PermutationEquivariantLayer,
    masked_pool,
    pack_sets,
    pad_sets,
)

D_IN = 3
D_CTX = 2
POOLS = ["sum", "mean", "max"]

FACTORIES: dict[str, Callable[[str], nn.Module]] = {
    "invariant": lambda p: DeepSetsInvariant(D_IN, [8, 6], [5], 2, pool_type=p),
    "equivariant": lambda p: DeepSetsEquivariant(D_IN, [6], 2, pool_type=p),
    "equivariant-pooled": lambda p: DeepSetsEquivariant(D_IN, [6], 2, pool_type=p, final_pool=p),
    "layer": lambda p: PermutationEquivariantLayer(D_IN, 4, pool_type=p),
    "conditional-concat": lambda p: DeepSetsConditional(D_IN, D_CTX, [6], [5], 2, pool_type=p),
    "conditional-add": lambda p: DeepSetsConditional(
        D_IN, D_CTX, [6], [5], 2, pool_type=p, fusion_type="add"
    ),
    "conditional-film": lambda p: DeepSetsConditional(
        D_IN, D_CTX, [6, 4], [5], 2, pool_type=p, fusion_type="film", context_in_rho=False
    ),
}
EQUIVARIANT = {"equivariant", "layer"}

SIZES = st.lists(st.one_of(st.integers(0, 6), st.integers(0, 1000)), min_size=1, max_size=5).filter(
    lambda sizes: sum(sizes) <= 2500
)


def _sets(sizes: list[int], seed: int, weighted: bool) -> tuple[list[Tensor], list[Tensor] | None]:
    generator = torch.Generator().manual_seed(seed)
    sets = [torch.randn(n, D_IN, generator=generator, dtype=torch.float64) for n in sizes]
    if not weighted:
        return sets, None
    weights = []
    for n in sizes:
        w = torch.rand(n, generator=generator, dtype=torch.float64) * 3
        w[torch.rand(n, generator=generator) < 0.3] = 0.0
        weights.append(w)
    return sets, weights


def _run(model: nn.Module, kind: str, x: Any, mask: Any, context: Tensor) -> Any:
    if kind.startswith("conditional"):
        return model(x, context, mask)
    return model(x, mask)


def _flat_out(out: Tensor) -> Tensor:
    """Outputs as rows: ``(B, out)`` stays, jagged ``(B, j, out)`` gives its values."""
    return out.values() if out.is_nested else out


@given(
    sizes=SIZES,
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(sorted(FACTORIES)),
    pool=st.sampled_from(POOLS),
    weighted=st.booleans(),
)
def test_packed_equals_padded_equals_loop(
    sizes: list[int], seed: int, kind: str, pool: str, weighted: bool
) -> None:
    torch.manual_seed(seed)
    model = FACTORIES[kind](pool).double()
    sets, weights = _sets(sizes, seed, weighted)
    context = torch.randn(len(sizes), D_CTX, dtype=torch.float64)
    batch = len(sizes)

    # --- packed, with NaN in the rows of weight 0
    values = torch.cat(sets).clone()
    w_flat = None if weights is None else torch.cat(weights)
    if w_flat is not None:
        values[w_flat == 0] = float("nan")
    values.requires_grad_(True)
    offsets = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()])
    x_packed = torch.nested.nested_tensor_from_jagged(values, offsets)
    w_packed = None if w_flat is None else torch.nested.nested_tensor_from_jagged(w_flat, offsets)
    out_packed = _run(model, kind, x_packed, w_packed, context)
    if kind in EQUIVARIANT:
        assert out_packed.is_nested and out_packed.shape[0] == batch
        assert out_packed.shape[1] == x_packed.shape[1]  # same ragged structure
    else:
        assert not out_packed.is_nested and out_packed.shape[0] == batch
    flat_packed = _flat_out(out_packed)
    probe = torch.randn_like(flat_packed)
    (flat_packed * probe).sum().backward()
    grad_values_packed = values.grad.clone()
    grads_packed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    # --- padded + mask, NaN in the rows of weight 0 and garbage in the padding
    values_pad = values.detach().clone().requires_grad_(True)
    split = list(values_pad.split(sizes))
    x_pad, mask = pad_sets(split, weights)
    active = mask if mask.dtype == torch.bool else mask > 0
    x_pad = torch.where(active.unsqueeze(-1), x_pad, torch.full_like(x_pad, float("inf")))
    out_pad = _run(model, kind, x_pad, mask, context)
    # packed equivariant outputs keep every row, weight-0 rows as exact zeros
    exists = torch.arange(x_pad.shape[1]) < torch.tensor(sizes).unsqueeze(1)
    flat_pad = out_pad[exists] if kind in EQUIVARIANT else out_pad
    torch.testing.assert_close(flat_packed, flat_pad, rtol=1e-9, atol=1e-10)
    (flat_pad * probe).sum().backward()
    torch.testing.assert_close(grad_values_packed, values_pad.grad, rtol=1e-9, atol=1e-10)
    for g_packed, p in zip(grads_packed, model.parameters(), strict=True):
        torch.testing.assert_close(g_packed, p.grad, rtol=1e-8, atol=1e-9)
    model.zero_grad()

    # --- one set at a time, leaving out the elements of weight 0
    values_loop = values.detach().clone().requires_grad_(True)
    rows = []
    for b, s in enumerate(values_loop.split(sizes)):
        w = None if weights is None else weights[b]
        keep = torch.ones(s.shape[0], dtype=torch.bool) if w is None else w > 0
        x_one = s[keep].unsqueeze(0)
        w_one = None if w is None else w[keep].unsqueeze(0)
        out_one = _run(model, kind, x_one, w_one, context[b : b + 1])
        if kind in EQUIVARIANT:  # put the left-out rows back as zeros
            full = out_one.new_zeros(s.shape[0], out_one.shape[-1])
            full = full.index_copy(0, torch.nonzero(keep).flatten(), out_one[0])
            rows.append(full)
        else:
            rows.append(out_one)
    flat_loop = torch.cat(rows)
    torch.testing.assert_close(flat_packed, flat_loop, rtol=1e-9, atol=1e-10)
    (flat_loop * probe).sum().backward()
    grad_loop = torch.nan_to_num(values_loop.grad, nan=0.0)
    torch.testing.assert_close(grad_values_packed, grad_loop, rtol=1e-9, atol=1e-10)
    for g_packed, p in zip(grads_packed, model.parameters(), strict=True):
        torch.testing.assert_close(g_packed, p.grad, rtol=1e-8, atol=1e-9)
    assert torch.isfinite(grad_values_packed).all()


@pytest.mark.parametrize("pool", POOLS)
def test_masked_pool_accepts_nested(pool: str) -> None:
    sets = [torch.randn(n, 4, dtype=torch.float64) for n in (3, 0, 7, 1)]
    weights = [torch.rand(n, dtype=torch.float64) for n in (3, 0, 7, 1)]
    x, w = pack_sets(sets, weights)
    x_pad, w_pad = pad_sets(sets, weights)
    torch.testing.assert_close(masked_pool(x, pool), masked_pool(x_pad, pool, w_pad > 0))
    torch.testing.assert_close(masked_pool(x, pool, w), masked_pool(x_pad, pool, w_pad))
    assert masked_pool(x, pool, keepdim=True).shape == (4, 1, 4)
    assert masked_pool(x, pool)[1].abs().max() == 0  # the empty set


def test_all_negative_sets_max_is_exact() -> None:
    sets = [-(torch.rand(n, 2) + 1) for n in (4, 1, 9)]
    x = pack_sets(sets)
    expected = torch.stack([s.amax(0) for s in sets])
    torch.testing.assert_close(masked_pool(x, "max"), expected)


def test_equivariant_output_shares_the_structure() -> None:
    model = DeepSetsEquivariant(D_IN, [5], 3)
    x = pack_sets([torch.randn(n, D_IN) for n in (2, 5, 0)])
    out = model(x)
    assert out.is_nested and out.layout == torch.jagged
    assert out.shape[0] == 3 and out.shape[1] == x.shape[1] and out.shape[2] == 3
    assert [t.shape[0] for t in out.unbind()] == [2, 5, 0]


def test_packed_input_with_holes_is_compacted() -> None:
    """A jagged view with holes (``torch.nested.narrow``) pools like the sets it shows."""
    base = torch.randn(3, 6, D_IN)
    starts, lengths = torch.tensor([1, 0, 2]), torch.tensor([3, 4, 2])
    x = torch.nested.narrow(base, 1, starts, lengths, layout=torch.jagged)
    assert x.lengths() is not None
    model = DeepSetsInvariant(D_IN, [8], [4], 1, pool_type="mean")
    expected = torch.cat(
        [
            model(base[b, s : s + n].unsqueeze(0))
            for b, (s, n) in enumerate(zip(starts, lengths, strict=True))
        ]
    )
    torch.testing.assert_close(model(x), expected)
    layer = PermutationEquivariantLayer(D_IN, 2)
    out = layer(x)
    for b, (s, n) in enumerate(zip(starts, lengths, strict=True)):
        torch.testing.assert_close(out[b], layer(base[b, s : s + n].unsqueeze(0))[0])


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_nested_input_errors_name_the_argument() -> None:
    model = DeepSetsInvariant(D_IN, [8], [4], 1)
    strided = torch.nested.nested_tensor([torch.randn(2, D_IN), torch.randn(3, D_IN)])
    with pytest.raises(ValueError, match=r"x is a nested tensor with layout torch\.strided"):
        model(strided)
    x = pack_sets([torch.randn(2, D_IN), torch.randn(3, D_IN)])
    with pytest.raises(ValueError, match=r"mask for a nested x .* must be a jagged nested"):
        model(x, torch.ones(2, 3, dtype=torch.bool))
    other = pack_sets([torch.ones(3, 1), torch.ones(2, 1)])
    with pytest.raises(ValueError, match=r"same set sizes as x .* \[3, 2\] for mask"):
        model(x, torch.nested.nested_tensor_from_jagged(other.values()[:, 0], other.offsets()))
    bad = torch.nested.nested_tensor_from_jagged(-torch.ones(5), x.offsets())
    with pytest.raises(ValueError, match="mask must hold finite, non-negative weights"):
        model(x, bad)
    with pytest.raises(ValueError, match=r"must have 3 features .* got shape \(2, j\d+, 4\)"):
        model(pack_sets([torch.randn(2, 4), torch.randn(3, 4)]))


def test_weights_with_equal_offsets_but_another_tensor_are_accepted() -> None:
    sets = [torch.randn(n, D_IN) for n in (2, 3)]
    weights = [torch.rand(n) for n in (2, 3)]
    x = pack_sets(sets)
    w = torch.nested.nested_tensor(weights, layout=torch.jagged)  # its own offsets tensor
    model = DeepSetsInvariant(D_IN, [8], [4], 1, pool_type="mean")
    x_pad, w_pad = pad_sets(sets, weights)
    torch.testing.assert_close(model(x, w), model(x_pad, w_pad))
