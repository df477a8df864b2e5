"""EquivariantLinear: counts, export, equivariance, and the Deep Sets layer as its first case."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from deepsets import PermutationEquivariantLayer
from deepsets.equivariance import (
    CyclicAction,
    EquivariantLinear,
    ProductAction,
    ReflectionAction,
    SymmetricAction,
    TrivialAction,
    common_group,
)
from deepsets.testing import assert_equivariant, assert_invariant

S = SymmetricAction

PAIRS = [
    (S(5), S(5)),
    (S(4, 2), S(4, 2)),
    (S(4), S(4, 2)),
    (S(4, 2), S(4)),
    (S(4, 2), TrivialAction()),
    (ProductAction(S(3), S(4)), ProductAction(S(3), S(4))),
    (ProductAction(S(3), S(4)), ProductAction(S(3), TrivialAction())),
    (ProductAction(S(2), S(3), S(2)), ProductAction(S(2), S(3), S(2))),
    (CyclicAction(6), CyclicAction(6)),
    (CyclicAction(6), TrivialAction()),
    (ReflectionAction.monomials(4), ReflectionAction()),
]


def test_the_power_spectrum_layer_has_20_parameters_and_exports_2099200() -> None:
    layer = EquivariantLinear(S(512), S(512), 2, 4)
    assert sum(p.numel() for p in layer.parameters()) == layer.weight_numel == 4 * 2 * 2 + 4
    dense = layer.export()
    assert sum(p.numel() for p in dense.parameters()) == layer.dense_numel
    assert layer.dense_numel == (512 * 2) * (512 * 4) + 512 * 4
    assert "parameters=20" in repr(layer) and "2,099,200" in repr(layer)


@pytest.mark.parametrize(("in_action", "out_action"), PAIRS, ids=str)
def test_layer_is_equivariant_under_random_group_elements(in_action, out_action) -> None:
    torch.manual_seed(0)
    layer = EquivariantLinear(in_action, out_action, 3, 2).double()
    with torch.no_grad():
        if layer.bias is not None:
            layer.bias.normal_()
    x = torch.randn(4, in_action.dim, 3, dtype=torch.float64)
    assert_equivariant(layer, x, in_action=in_action, out_action=out_action, num_permutations=5)


@pytest.mark.parametrize(("in_action", "out_action"), PAIRS, ids=str)
def test_a_broken_coefficient_pattern_fails_the_check(in_action, out_action) -> None:
    torch.manual_seed(0)
    layer = EquivariantLinear(in_action, out_action, 2, 2, bias=False).double()
    with torch.no_grad():
        layer.basis[0] = torch.rand_like(layer.basis[0])  # no longer shared
    x = torch.randn(3, in_action.dim, 2, dtype=torch.float64)
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(
            layer,
            x,
            in_action=in_action,
            out_action=out_action,
            num_permutations=10,
            generator=torch.Generator().manual_seed(1),
        )


def test_invariant_layer_passes_assert_invariant() -> None:
    action = ProductAction(S(3), S(4))
    layer = EquivariantLinear(action, TrivialAction(), 2, 5).double()
    assert layer.basis_size == 1
    assert_invariant(layer, torch.randn(3, 12, 2, dtype=torch.float64), in_action=action)


@given(c_in=st.integers(1, 3), c_out=st.integers(1, 3), k=st.integers(0, 2), ell=st.integers(1, 2))
def test_export_and_expand_compute_the_same_function(c_in, c_out, k, ell) -> None:
    in_action = S(3, k) if k else TrivialAction()
    layer = EquivariantLinear(in_action, S(3, ell), c_in, c_out).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, in_action.dim, c_in, dtype=torch.float64)
    dense = layer.export()
    assert isinstance(dense, nn.Linear)
    assert torch.allclose(dense(x.flatten(1)), layer(x).flatten(1))
    # The dense weight commutes with the action (kron with the channel identity).
    g = torch.randperm(3)
    rho_in = torch.kron(in_action.matrix(g), torch.eye(c_in, dtype=torch.float64))
    rho_out = torch.kron(S(3, ell).matrix(g), torch.eye(c_out, dtype=torch.float64))
    weight = layer.expand_parameters()
    assert torch.allclose(weight @ rho_in, rho_out @ weight)
    assert torch.allclose(rho_out @ layer.expand_bias(), layer.expand_bias())


@given(n=st.integers(1, 9), c_in=st.integers(1, 3), c_out=st.integers(1, 3))
def test_first_order_is_the_deep_sets_layer(n: int, c_in: int, c_out: int) -> None:
    """W = a_id I + a_off (11ᵀ - I) = (a_id - a_off) I + a_off 11ᵀ: lambda and gamma."""
    layer = EquivariantLinear(S(n), S(n), c_in, c_out).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(3, n, c_in, dtype=torch.float64)
    for pool, scale in (("sum", 1.0), ("mean", float(n))):
        deep_sets = PermutationEquivariantLayer(c_in, c_out, pool_type=pool).double()
        a = layer.weight
        off = a[:, :, 1] if n > 1 else torch.zeros_like(a[:, :, 0])
        with torch.no_grad():
            deep_sets.lambda_net.weight.copy_(a[:, :, 0] - off)
            deep_sets.lambda_net.bias.copy_(layer.bias[:, 0])
            deep_sets.gamma_net.weight.copy_(off * scale)
        assert torch.allclose(deep_sets(x), layer(x))


def test_signature_of_the_issue() -> None:
    """EquivariantLinear(in_action, out_action, input_dim=1, output_dim=1, bias=True)
    (positionally the signature of the issue, which named the widths in_channels/out_channels)."""
    layer = EquivariantLinear(S(3), S(3), 2, 3, False)
    assert layer.bias is None and layer.weight.shape == (3, 2, 2)
    assert EquivariantLinear(S(3), S(3)).weight.shape == (1, 1, 2)


def test_bias_only_spans_invariant_vectors() -> None:
    layer = EquivariantLinear(S(4), S(4, 2), 1, 1)
    assert layer.bias is not None and layer.bias.shape == (1, 2)  # diagonal, off-diagonal
    no_bias = EquivariantLinear(S(4), S(4), 2, 3, bias=False)
    assert no_bias.bias is None and no_bias.export().bias is None
    assert no_bias.weight_numel == 2 * 3 * 2


def test_gradients_reach_the_coordinates_only() -> None:
    layer = EquivariantLinear(S(4, 2), S(4, 2), 2, 2)
    layer(torch.randn(3, 16, 2)).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert not layer.basis.requires_grad
    assert {name for name, _ in layer.named_buffers()} == {"basis", "bias_basis"}


def test_initialisation_keeps_outputs_of_unit_scale() -> None:
    torch.manual_seed(0)
    layer = EquivariantLinear(S(16, 2), S(16, 2), 8, 8)
    y = layer(torch.randn(64, 256, 8))
    assert 0.2 < y.std().item() < 2.0


def test_bad_inputs_raise_clear_errors() -> None:
    layer = EquivariantLinear(S(4, 2), S(4, 2), 2, 3)
    with pytest.raises(ValueError, match=r"\(B, 16, 2\).*flatten"):
        layer(torch.randn(3, 4, 4, 2))
    with pytest.raises(TypeError, match="GroupAction"):
        EquivariantLinear(4, S(4))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same group"):
        EquivariantLinear(S(4), S(5))
    with pytest.raises(ValueError, match="input_dim"):
        EquivariantLinear(S(4), S(4), 0)
    with pytest.raises(ValueError, match="out_action needs in_action"):
        assert_equivariant(layer, torch.randn(3, 16, 2), out_action=S(4, 2))


def test_common_group_of_the_pairs_is_used_for_checks() -> None:
    for in_action, out_action in PAIRS:
        assert common_group(in_action, out_action) is not None
