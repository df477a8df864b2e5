"""``deepsets.functional.pooled_outer``: Σ_n w_n u_n v_nᵀ for padded, jagged and packed sets.

Checked against ``masked_pool`` of the explicit products, against a Python loop over the
elements of each set, against the expanded multiset, and with gradcheck; padding may hold
NaN/inf and must never matter.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from torch._dynamo.utils import counters

from deepsets import pack_sets, pad_sets
from deepsets.functional import masked_pool, pooled_outer

SEEDS = st.integers(0, 2**31 - 1)
MASKS = ["none", "bool", "weights"]
#: Set sizes with small and large spread, so both packed kernels run (the batched product
#: when padding is cheap, the flat segment sum when one set is much larger than the rest).
SIZES = st.lists(st.one_of(st.integers(0, 4), st.integers(0, 40)), min_size=1, max_size=5)


def loop_outer(us: list[Tensor], vs: list[Tensor], ws: list[Tensor] | None) -> Tensor:
    """One element at a time, from the definition; elements of weight 0 are skipped."""
    out = []
    for b, (u, v) in enumerate(zip(us, vs, strict=True)):
        total = torch.zeros(u.shape[1], v.shape[1], dtype=u.dtype)
        for n in range(u.shape[0]):
            weight = 1.0 if ws is None else float(ws[b][n])
            if weight > 0:
                total = total + weight * torch.outer(u[n], v[n])
        out.append(total)
    return torch.stack(out)


def make_weights(kind: str, shape: tuple[int, ...], generator: torch.Generator) -> Tensor | None:
    if kind == "none":
        return None
    keep = torch.rand(shape, generator=generator) > 0.3
    if kind == "bool":
        return keep
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 3 * keep


def dirty(x: Tensor, weights: Tensor | None) -> Tensor:
    """``x`` with NaN, +inf and -inf at positions of weight 0."""
    if weights is None:
        return x.clone()
    out = x.clone()
    junk = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=x.dtype)
    inactive = (weights == 0).nonzero()
    for i, position in enumerate(inactive.tolist()):
        out[tuple(position)] = junk[i % 3]
    return out


@given(seed=SEEDS, kind=st.sampled_from(MASKS), size=st.integers(0, 7), same=st.booleans())
def test_padded_equals_masked_pool_of_the_products(
    seed: int, kind: str, size: int, same: bool
) -> None:
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(3, size, 4, generator=generator, dtype=torch.float64)
    v = u if same else torch.randn(3, size, 2, generator=generator, dtype=torch.float64)
    weights = make_weights(kind, (3, size), generator)
    out = pooled_outer(u, None if same else v, weights)
    products = (u.unsqueeze(-1) * v.unsqueeze(-2)).flatten(2)  # (B, M, D_u·D_v)
    expected = masked_pool(products, "sum", weights).view(3, 4, v.shape[-1])
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    loop = loop_outer(list(u), list(v), None if weights is None else list(weights))
    torch.testing.assert_close(out, loop, atol=1e-12, rtol=1e-12)


@given(seed=SEEDS, kind=st.sampled_from(MASKS), size=st.integers(1, 9))
def test_permuting_the_elements_changes_nothing(seed: int, kind: str, size: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(2, size, 3, generator=generator, dtype=torch.float64)
    v = torch.randn(2, size, 2, generator=generator, dtype=torch.float64)
    weights = make_weights(kind, (2, size), generator)
    order = torch.randperm(size, generator=generator)
    permuted_weights = None if weights is None else weights[:, order]
    permuted = pooled_outer(u[:, order], v[:, order], permuted_weights)
    torch.testing.assert_close(permuted, pooled_outer(u, v, weights), atol=1e-12, rtol=1e-12)


@given(seed=SEEDS, kind=st.sampled_from(["bool", "weights"]), same=st.booleans())
def test_padding_values_never_matter(seed: int, kind: str, same: bool) -> None:
    """NaN/±inf at positions of weight 0 reach neither the value nor any gradient."""
    generator = torch.Generator().manual_seed(seed)
    clean_u = torch.randn(3, 6, 3, generator=generator, dtype=torch.float64)
    clean_v = torch.randn(3, 6, 2, generator=generator, dtype=torch.float64)
    weights = make_weights(kind, (3, 6), generator)
    assert weights is not None
    u = dirty(clean_u, weights).requires_grad_(True)
    v = dirty(clean_v, weights).requires_grad_(True)
    out = pooled_outer(u, None if same else v, weights)
    expected = pooled_outer(clean_u, None if same else clean_v, weights)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    out.sum().backward()
    assert u.grad is not None and bool(torch.isfinite(u.grad).all())
    assert bool((u.grad[weights == 0] == 0).all())
    if not same:
        assert v.grad is not None and bool(torch.isfinite(v.grad).all())


@given(seed=SEEDS, sizes=SIZES, kind=st.sampled_from(MASKS), form=st.sampled_from(["o", "i", "j"]))
def test_packed_equals_padded_equals_the_loop(
    seed: int, sizes: list[int], kind: str, form: str
) -> None:
    """CSR offsets, a shuffled row index and jagged nested input all give the padded answer
    and the per-set loop; NaN in rows of weight 0 never leaks."""
    generator = torch.Generator().manual_seed(seed)
    us = [torch.randn(n, 3, generator=generator, dtype=torch.float64) for n in sizes]
    vs = [torch.randn(n, 2, generator=generator, dtype=torch.float64) for n in sizes]
    ws = None
    if kind != "none":
        ws = [w for n in sizes if (w := make_weights(kind, (n,), generator)) is not None]
    expected = loop_outer(us, vs, ws)
    padded_u, mask = pad_sets(us)
    padded_v, _ = pad_sets(vs)
    padded_w = mask if ws is None else pad_sets([w.unsqueeze(-1).double() for w in ws])[0][..., 0]
    if kind == "bool":
        padded_w = padded_w > 0
    padded = pooled_outer(padded_u, padded_v, padded_w)
    torch.testing.assert_close(padded, expected, atol=1e-12, rtol=1e-12)

    u_rows, v_rows = torch.cat(us), torch.cat(vs)
    w_rows = None if ws is None else torch.cat(ws)
    u_rows, v_rows = dirty(u_rows, w_rows), dirty(v_rows, w_rows)
    counts = torch.tensor(sizes)
    if form == "o":
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        packed = pooled_outer(u_rows, v_rows, w_rows, offsets=offsets)
    elif form == "i":
        index = torch.repeat_interleave(torch.arange(len(sizes)), counts)
        order = torch.randperm(index.shape[0], generator=generator)
        packed = pooled_outer(
            u_rows[order],
            v_rows[order],
            None if w_rows is None else w_rows[order],
            index=index[order],
            num_sets=len(sizes),
        )
    else:
        ju = pack_sets(list(u_rows.split(sizes)))
        jv = torch.nested.nested_tensor_from_jagged(v_rows, ju.offsets())
        jw = None
        if w_rows is not None:
            jw = torch.nested.nested_tensor_from_jagged(w_rows, ju.offsets())
        packed = pooled_outer(ju, jv, jw)
    torch.testing.assert_close(packed, expected, atol=1e-12, rtol=1e-12)


@given(seed=SEEDS, counts=st.lists(st.integers(0, 3), min_size=1, max_size=6))
def test_integer_weights_equal_the_expanded_multiset(seed: int, counts: list[int]) -> None:
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(len(counts), 3, generator=generator, dtype=torch.float64)
    v = torch.randn(len(counts), 2, generator=generator, dtype=torch.float64)
    weights = torch.tensor(counts, dtype=torch.float64)
    repeats = torch.tensor(counts)
    expanded_u = u.repeat_interleave(repeats, dim=0).unsqueeze(0)  # (1, Σ counts, 3)
    expanded_v = v.repeat_interleave(repeats, dim=0).unsqueeze(0)
    expected = pooled_outer(expanded_u, expanded_v)
    weighted = pooled_outer(u.unsqueeze(0), v.unsqueeze(0), weights.unsqueeze(0))
    torch.testing.assert_close(weighted, expected, atol=1e-12, rtol=1e-12)
    offsets = torch.tensor([0, len(counts)])
    packed = pooled_outer(u, v, weights, offsets=offsets)
    torch.testing.assert_close(packed, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("form", ["padded-empty", "padded-masked", "offsets", "jagged"])
def test_empty_sets_give_zeros_with_finite_gradients(form: str) -> None:
    u = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    if form == "padded-empty":
        out = pooled_outer(u[:0].view(1, 0, 3).expand(2, 0, 3))
        empty = [0, 1]
    elif form == "padded-masked":
        mask = torch.tensor([[False] * 7, [True] * 7])
        out = pooled_outer(u.expand(2, 7, 3), weights=mask)
        empty = [0]
    elif form == "offsets":
        out = pooled_outer(u, weights=torch.ones(7).double(), offsets=torch.tensor([0, 0, 7, 7]))
        empty = [0, 2]
    else:
        out = pooled_outer(pack_sets([u[:0], u, u[:0]]))
        empty = [0, 2]
    assert bool((out[empty] == 0).all())
    out.square().sum().backward()
    assert u.grad is not None and bool(torch.isfinite(u.grad).all())


def test_no_set_at_all_gives_an_empty_batch() -> None:
    out = pooled_outer(torch.randn(0, 3), torch.randn(0, 2), offsets=torch.tensor([0]))
    assert out.shape == (0, 3, 2)


@pytest.mark.parametrize("kind", MASKS)
def test_gradcheck_padded(kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(2, 4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 4, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = make_weights(kind, (2, 4), generator)
    assert torch.autograd.gradcheck(lambda a, b: pooled_outer(a, b, weights), (u, v))
    assert torch.autograd.gradcheck(lambda a: pooled_outer(a, weights=weights), (u,))
    if kind == "weights":
        w = torch.rand(2, 4, generator=generator, dtype=torch.float64) + 0.1
        assert torch.autograd.gradcheck(lambda a: pooled_outer(u, v, a), (w.requires_grad_(),))


@pytest.mark.parametrize("sizes", [[4, 4], [1, 1, 1, 20]], ids=["batched-kernel", "flat-kernel"])
@pytest.mark.parametrize("form", ["offsets", "index"])
def test_gradcheck_packed(sizes: list[int], form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both packed kernels: one batched product when padding the rows costs no more than
    the flat per-row products (S·M·(D_u + D_v) ≤ N·D_u·D_v), else the segment sum."""
    calls = []
    bmm = torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda *a: calls.append(1) or bmm(*a))
    generator = torch.Generator().manual_seed(1)
    rows = sum(sizes)
    u = torch.randn(rows, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    v = torch.randn(rows, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(rows, generator=generator, dtype=torch.float64) + 0.1
    counts = torch.tensor(sizes)
    if form == "offsets":
        where = {"offsets": torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])}
    else:
        index = torch.repeat_interleave(torch.arange(len(sizes)), counts).flip(0)
        where = {"index": index, "num_sets": len(sizes)}
    assert torch.autograd.gradcheck(lambda a, b: pooled_outer(a, b, weights, **where), (u, v))
    w = weights.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: pooled_outer(u, v, a, **where), (w,))
    assert bool(calls) == (sizes == [4, 4])


def test_half_precision_accumulates_in_float32() -> None:
    u = torch.rand(1, 4096, 2, dtype=torch.float64)
    expected = pooled_outer(u)
    out = pooled_outer(u.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), expected, rtol=1e-2, atol=0)
    rows = pooled_outer(u[0].bfloat16(), offsets=torch.tensor([0, 4096]))
    torch.testing.assert_close(rows.double(), expected, rtol=1e-2, atol=0)


@pytest.mark.parametrize("kind", MASKS)
def test_padded_compiles_without_graph_breaks(kind: str) -> None:
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(pooled_outer, fullgraph=True, backend="eager")
    generator = torch.Generator().manual_seed(0)
    for batch, size in [(2, 5), (4, 9), (3, 7), (5, 13)]:
        u, v = torch.randn(batch, size, 4), torch.randn(batch, size, 3)
        weights = make_weights(kind, (batch, size), generator)
        weights = weights.float() if weights is not None and kind == "weights" else weights
        torch.testing.assert_close(compiled(u, v, weights), pooled_outer(u, v, weights))
    assert dict(counters["graph_break"]) == {}
    torch._dynamo.reset()


def test_bad_input_names_the_argument_expected_and_actual() -> None:
    u = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"u must have shape \(B, M, D\).*got 2-D shape \(5, 3\)"):
        pooled_outer(torch.randn(5, 3))
    with pytest.raises(TypeError, match=r"u must be a floating-point tensor; got dtype torch.int"):
        pooled_outer(torch.ones(2, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"v must have the batch and set sizes of u.*got shape"):
        pooled_outer(u, torch.randn(2, 4, 3))
    with pytest.raises(TypeError, match=r"v has dtype torch.float64 but u has dtype torch.float32"):
        pooled_outer(u, u.double())
    with pytest.raises(ValueError, match=r"weights must have shape \(B, M\) = \(2, 5\)"):
        pooled_outer(u, weights=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"weights must be finite and non-negative.*-1.0"):
        pooled_outer(u, weights=-torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"u and v must both be padded or both be jagged"):
        pooled_outer(u, pack_sets([torch.randn(5, 3), torch.randn(5, 3)]))
    with pytest.raises(ValueError, match=r"num_sets is for packed rows"):
        pooled_outer(u, num_sets=2)
    rows = torch.randn(6, 3)
    offsets = torch.tensor([0, 2, 6])
    with pytest.raises(ValueError, match=r"v must have one row per row of u.*\(6, D_v\).*\(5, 3\)"):
        pooled_outer(rows, torch.randn(5, 3), offsets=offsets)
    with pytest.raises(ValueError, match=r"offsets must start at 0 and end at N = 6"):
        pooled_outer(rows, offsets=torch.tensor([0, 2, 5]))
    with pytest.raises(ValueError, match=r"pass exactly one of offsets.*both"):
        pooled_outer(rows, offsets=offsets, index=torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"weights must have shape \(N,\) = \(6,\)"):
        pooled_outer(rows, weights=torch.ones(5), offsets=offsets)
    packed = pack_sets([torch.randn(2, 3), torch.randn(3, 3)])
    other = pack_sets([torch.randn(3, 3), torch.randn(2, 3)])
    with pytest.raises(ValueError, match=r"v must have the batch and set sizes of u"):
        pooled_outer(packed, other)
