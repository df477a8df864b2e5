"""Numerics: low-precision accumulation, padding that never leaks, float64 everywhere."""

from __future__ import annotations

import math
from collections.abc import Callable

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
)
from deepsets.functional import masked_pool

FEATURES = 3
CONTEXT = 2

FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "invariant-sum": lambda: DeepSetsInvariant(FEATURES, [5], [4], 2, pool_type="sum"),
    "invariant-max": lambda: DeepSetsInvariant(FEATURES, [5], [4], 2, pool_type="max"),
    "equivariant": lambda: DeepSetsEquivariant(FEATURES, [4], 2, pool_type="mean"),
    "equivariant-pooled": lambda: DeepSetsEquivariant(
        FEATURES, [4], 2, pool_type="max", final_pool="sum"
    ),
    "conditional-concat": lambda: DeepSetsConditional(FEATURES, CONTEXT, [5], [4], 2),
    "conditional-film": lambda: DeepSetsConditional(
        FEATURES, CONTEXT, [5], [4], 2, pool_type="mean", fusion_type="film"
    ),
    "conditional-add": lambda: DeepSetsConditional(
        FEATURES, CONTEXT, [5], [4], 2, pool_type="max", fusion_type="add"
    ),
    "layer": lambda: PermutationEquivariantLayer(FEATURES, 4, pool_type="max"),
}
MODELS = {name: factory() for name, factory in FACTORIES.items()}


def _call(model: nn.Module, x: Tensor, mask: Tensor | None, context: Tensor) -> Tensor:
    if isinstance(model, DeepSetsConditional):
        return model(x, context, mask=mask)
    return model(x, mask=mask)


# ------------------------------------------------------------------- low-precision pooling

LARGE_SET = 100_000


def _relative_error(out: Tensor, reference: Tensor) -> float:
    return float(((out.detach().double() - reference).abs() / reference.abs()).max())


def _relative_norm_error(out: Tensor, reference: Tensor) -> float:
    """Per set: |out - ref| / |ref| over the feature vector, robust to a coordinate near 0."""
    difference = (out.detach().double() - reference.detach()).norm(dim=-1)
    return float((difference / reference.detach().norm(dim=-1)).max())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "weights"])
def test_low_precision_pooling_of_a_large_set(dtype: torch.dtype, mask_kind: str) -> None:
    """Sum and mean of 10⁵ low-precision elements stay within 1e-2 of float64."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, LARGE_SET, 4, generator=generator).to(dtype)  # positive: no cancellation
    mask: Tensor | None = None
    if mask_kind == "bool":
        mask = torch.rand(2, LARGE_SET, generator=generator) < 0.7
    elif mask_kind == "weights":
        mask = torch.rand(2, LARGE_SET, generator=generator)
    exact_mask = None if mask is None else (mask if mask.dtype == torch.bool else mask.double())
    for pool in ("sum", "mean"):
        out = masked_pool(x, pool, mask)
        assert out.dtype == dtype
        reference = masked_pool(x.double(), pool, exact_mask)  # the same inputs, in float64
        assert _relative_error(out, reference) < 1e-2, pool


def test_bf16_autocast_pools_in_float32() -> None:
    """Under CPU bf16 autocast φ runs in bf16; the pool of 10⁵ φ(x) stays within 1e-2."""
    torch.manual_seed(1)  # the weights too: an unseeded φ could pool close to 0
    model = DeepSetsInvariant(FEATURES, [8], [8], 1, pool_type="sum")
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, LARGE_SET, FEATURES, generator=generator)
    mask = torch.rand(2, LARGE_SET, generator=generator)
    seen: list[Tensor] = []
    model.rho.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        latent = model.phi(x)
        assert latent.dtype == torch.bfloat16
        model(x, mask=mask)
    pooled = seen[0]
    reference = (mask.double().unsqueeze(-1) * latent.double()).sum(dim=1)
    assert _relative_norm_error(pooled, reference) < 1e-2
    # and against φ computed in float64 throughout (bf16 rounding of φ included)
    exact = masked_pool(model.double().phi(x.double()), "sum", mask.double())
    assert _relative_norm_error(pooled, exact) < 1e-2


# -------------------------------------------------------------- padding never leaks

PADDING = st.sampled_from([math.nan, math.inf, -math.inf, 1e38, -3e38, 1e4])


@given(
    name=st.sampled_from(sorted(MODELS)),
    padding=PADDING,
    weighted=st.booleans(),
    batch=st.integers(1, 3),
    size=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_padding_never_leaks_into_outputs_or_gradients(
    name: str, padding: float, weighted: bool, batch: int, size: int, seed: int
) -> None:
    model = MODELS[name]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, FEATURES, generator=generator)
    mask: Tensor = torch.rand(batch, size, generator=generator) < 0.6
    if weighted:
        mask = mask * torch.rand(batch, size, generator=generator) * 2
    inactive = ~(mask > 0).unsqueeze(-1)
    context = torch.randn(batch, CONTEXT, generator=generator)
    probe = torch.randn(_call(model, x, mask, context).shape, generator=generator)

    def run(padded: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        padded = padded.clone().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        out = _call(model, padded, mask, context)
        (out * probe).sum().backward()
        assert padded.grad is not None
        return out.detach(), padded.grad, [p.grad for p in model.parameters() if p.grad is not None]

    clean_out, clean_grad, clean_param_grads = run(x.masked_fill(inactive, 0.0))
    out, grad, param_grads = run(x.masked_fill(inactive, padding))

    assert bool(torch.isfinite(out).all())
    assert torch.equal(out, clean_out)
    assert bool(torch.isfinite(grad).all())
    assert bool((grad.masked_select(inactive) == 0).all())
    assert torch.equal(grad, clean_grad)
    assert len(param_grads) == len(clean_param_grads)
    for g, clean in zip(param_grads, clean_param_grads, strict=True):
        assert bool(torch.isfinite(g).all())
        torch.testing.assert_close(g, clean, atol=0, rtol=0)


@given(
    pool=st.sampled_from(["sum", "mean", "max"]),
    padding=PADDING,
    seed=st.integers(0, 2**16),
)
def test_pooling_padding_and_weight_gradients_stay_finite(
    pool: str, padding: float, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 2, generator=generator)
    weights = torch.rand(3, 5, generator=generator) * (torch.rand(3, 5, generator=generator) < 0.6)
    weights[0] = 0.0  # one empty set
    x = x.masked_fill((weights == 0).unsqueeze(-1), padding).requires_grad_(True)
    weights.requires_grad_(True)
    out = masked_pool(x, pool, weights)
    out.sum().backward()
    assert x.grad is not None
    assert bool(torch.isfinite(out).all())
    assert bool((out[0] == 0).all())
    assert bool(torch.isfinite(x.grad).all())
    if pool == "max":
        # max only asks whether a weight is positive, so no gradient reaches the weights
        assert weights.grad is None
    else:
        assert weights.grad is not None
        assert bool(torch.isfinite(weights.grad).all())
    assert bool((x.grad[weights == 0] == 0).all())


# ------------------------------------------------------------------------- float64


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_float64_end_to_end(name: str) -> None:
    torch.manual_seed(0)
    model = FACTORIES[name]().double()
    x = torch.randn(2, 4, FEATURES, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False, True], [True, False, False, False]])
    context = torch.randn(2, CONTEXT, dtype=torch.float64)
    out = _call(model, x, mask, context)
    assert out.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert torch.autograd.gradcheck(
        lambda inputs: _call(model, inputs, mask, context), (x,), eps=1e-6, atol=1e-7
    )
