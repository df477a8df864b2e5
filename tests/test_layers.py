"""``PermutationEquivariantLayer`` (Lemma 3) and the ``mlp`` building block."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn

from deepsets import PermutationEquivariantLayer
from deepsets.functional import masked_pool
from deepsets.layers import mlp, mlp_width
from deepsets.testing import assert_equivariant, random_permutations

POOLS = ["sum", "mean", "max"]


def _inputs(
    seed: int, batch: int, size: int, dim: int, masked: bool
) -> tuple[Tensor, Tensor | None]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, dim, generator=generator, dtype=torch.float64)
    if not masked:
        return x, None
    mask = torch.rand(batch, size, generator=generator) < 0.7
    return x, mask


def _layer(d_in: int, d_out: int, pool: str, seed: int = 0) -> PermutationEquivariantLayer:
    torch.manual_seed(seed)
    return PermutationEquivariantLayer(d_in, d_out, pool).double()


# -------------------------------------------------------------------- construction


def test_attributes_are_the_two_linear_maps() -> None:
    layer = PermutationEquivariantLayer(3, 5, pool_type="sum")
    assert isinstance(layer.lambda_net, nn.Linear)
    assert isinstance(layer.gamma_net, nn.Linear)
    assert (layer.lambda_net.in_features, layer.lambda_net.out_features) == (3, 5)
    assert (layer.gamma_net.in_features, layer.gamma_net.out_features) == (3, 5)
    assert layer.pool_type == "sum"
    assert {name for name, _ in layer.named_children()} == {"lambda_net", "gamma_net"}


def test_default_pool_is_max() -> None:
    assert PermutationEquivariantLayer(2, 2).pool_type == "max"


@pytest.mark.parametrize("pool", POOLS)
def test_two_to_four_channels_has_twenty_parameters(pool: str) -> None:
    layer = PermutationEquivariantLayer(2, 4, pool)
    assert sum(p.numel() for p in layer.parameters()) == 20


@given(d_in=st.integers(1, 9), d_out=st.integers(1, 9))
def test_parameter_count_formula(d_in: int, d_out: int) -> None:
    layer = PermutationEquivariantLayer(d_in, d_out)
    assert sum(p.numel() for p in layer.parameters()) == 2 * d_in * d_out + d_out


# -------------------------------------------------------------------- Lemma 3


@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    size=st.integers(1, 6),
    d_in=st.integers(1, 4),
    d_out=st.integers(1, 4),
    pool=st.sampled_from(POOLS),
)
def test_lemma_3_structure_exactly(
    seed: int, batch: int, size: int, d_in: int, d_out: int, pool: str
) -> None:
    layer = _layer(d_in, d_out, pool, seed)
    x, _ = _inputs(seed, batch, size, d_in, masked=False)
    expected = layer.lambda_net(x) + layer.gamma_net(masked_pool(x, pool, keepdim=True))
    torch.testing.assert_close(layer(x), expected, atol=1e-12, rtol=1e-12)


@given(
    seed=st.integers(0, 2**31 - 1),
    size=st.integers(1, 6),
    pool=st.sampled_from(POOLS),
    weighted=st.booleans(),
)
def test_lemma_3_with_a_mask_and_padded_outputs_are_zero(
    seed: int, size: int, pool: str, weighted: bool
) -> None:
    """Members: Λx_i + Γ pool(X over members). Padded positions: exactly 0 (documented)."""
    layer = _layer(3, 2, pool, seed)
    x, keep = _inputs(seed, 3, size, 3, masked=True)
    assert keep is not None
    mask: Tensor = keep * (torch.rand(3, size, dtype=torch.float64) + 0.5) if weighted else keep
    out = layer(x, mask)
    pooled = masked_pool(x, pool, mask, keepdim=True)
    expected = layer.lambda_net(x) + layer.gamma_net(pooled)
    members = keep.unsqueeze(-1).expand_as(out)
    torch.testing.assert_close(out[members], expected[members], atol=1e-12, rtol=1e-12)
    assert bool((out[~members] == 0).all())


# ----------------------------------------------------------------- equivariance


@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    size=st.integers(1, 7),
    pool=st.sampled_from(POOLS),
    masked=st.booleans(),
)
def test_equivariant(seed: int, batch: int, size: int, pool: str, masked: bool) -> None:
    layer = _layer(3, 4, pool, seed)
    x, mask = _inputs(seed, batch, size, 3, masked)
    generator = torch.Generator().manual_seed(seed)
    assert_equivariant(layer, x, mask, generator=generator)


@given(seed=st.integers(0, 2**31 - 1), size=st.integers(2, 7), pool=st.sampled_from(POOLS))
def test_equivariant_but_not_invariant(seed: int, size: int, pool: str) -> None:
    layer = _layer(3, 4, pool, seed)
    x, _ = _inputs(seed, 1, size, 3, masked=False)
    out = layer(x)
    shift = torch.roll(torch.arange(size), 1)  # a permutation that moves every element
    permuted = layer(x[:, shift])
    torch.testing.assert_close(permuted, out[:, shift])  # equivariant ...
    assert not torch.allclose(permuted, out)  # ... and the output order follows the input


@pytest.mark.parametrize("pool", POOLS)
def test_pooled_term_is_shared_across_the_set(pool: str) -> None:
    """Changing one element changes every other element's output through Γ pool(X)."""
    layer = _layer(2, 3, pool)
    x = torch.tensor([[[0.5, -1.0], [1.0, 2.0], [-0.5, 0.3]]], dtype=torch.float64)
    moved = x.clone()
    moved[0, 1] += 5.0  # the largest element grows: sum, mean and max all change
    before, after = layer(x), layer(moved)
    delta = layer.gamma_net(masked_pool(moved, pool) - masked_pool(x, pool))
    torch.testing.assert_close(after[0, 0] - before[0, 0], delta[0])
    torch.testing.assert_close(after[0, 2] - before[0, 2], delta[0])


# --------------------------------------------------------------- mean and repetition


@given(seed=st.integers(0, 2**31 - 1), size=st.integers(1, 5), k=st.integers(2, 4))
def test_mean_layer_ignores_repeating_the_set(seed: int, size: int, k: int) -> None:
    layer = _layer(3, 4, "mean", seed)
    x, _ = _inputs(seed, 2, size, 3, masked=False)
    torch.testing.assert_close(layer(x.repeat(1, k, 1)), layer(x).repeat(1, k, 1))


@given(seed=st.integers(0, 2**31 - 1), size=st.integers(1, 5), k=st.integers(2, 4))
def test_mean_layer_ignores_repeating_a_masked_set(seed: int, size: int, k: int) -> None:
    layer = _layer(3, 4, "mean", seed)
    x, mask = _inputs(seed, 2, size, 3, masked=True)
    assert mask is not None
    torch.testing.assert_close(
        layer(x.repeat(1, k, 1), mask.repeat(1, k)), layer(x, mask).repeat(1, k, 1)
    )


def test_sum_layer_does_see_the_repetition() -> None:
    """Contrast: with sum pooling, k copies multiply the pooled term by k."""
    layer = _layer(3, 4, "sum")
    x = torch.randn(1, 3, 3, dtype=torch.float64)
    assert not torch.allclose(layer(x.repeat(1, 2, 1)), layer(x).repeat(1, 2, 1))


# --------------------------------------------------------------------------- misc


def test_batch_elements_are_independent() -> None:
    layer = _layer(3, 2, "max")
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    together = layer(x)
    for b in range(4):
        torch.testing.assert_close(together[b : b + 1], layer(x[b : b + 1]))


def test_random_permutations_are_permutations() -> None:
    perm = random_permutations(6, 9, generator=torch.Generator().manual_seed(0))
    assert perm.shape == (6, 9)
    assert torch.equal(perm.sort(dim=1).values, torch.arange(9).expand(6, 9))


@pytest.mark.parametrize(
    ("hidden", "out_dim", "width", "linears"),
    [([], None, 3, 0), ([5], None, 5, 1), ([5, 6], 2, 2, 3), ([], 4, 4, 1)],
)
def test_mlp_widths(hidden: list[int], out_dim: int | None, width: int, linears: int) -> None:
    net = mlp(3, hidden, out_dim)
    assert mlp_width(3, hidden, out_dim) == width
    assert sum(isinstance(m, nn.Linear) for m in net) == linears
    assert net(torch.randn(2, 7, 3)).shape == (2, 7, width)
    if out_dim is None and hidden:
        assert isinstance(net[-1], nn.ReLU)  # an encoder ends in its activation
    if out_dim is not None:
        assert isinstance(net[-1], nn.Linear)  # a head ends linear


def test_mlp_activation_is_one_module_per_hidden_layer() -> None:
    net = mlp(3, [5, 6], 2, activation=nn.SiLU)
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.SiLU, nn.Linear, nn.SiLU, nn.Linear]
    assert net[1] is not net[3]
    assert all(not isinstance(m, nn.ReLU) for m in net)
    with pytest.raises(TypeError, match="activation must make a module"):
        mlp(3, [5], activation="silu")  # type: ignore[arg-type]
