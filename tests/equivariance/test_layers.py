"""Structured layers: each equals EquivariantLinear with the same coefficients, and is equivariant.

The fast layers register the orbit coordinates of ``intertwiner_basis`` for their action, so
copying a weight into ``EquivariantLinear`` must give the same function. For small sizes
(``N < 4`` for edges, ``N = 1`` for an axis of a matrix) some orbits are empty and the dense
basis drops them; the fast layer's coordinates on the remaining orbits are what is copied.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from deepsets import PermutationEquivariantLayer
from deepsets.equivariance import (
    CyclicAction,
    CyclicConvLayer,
    EquivariantLinear,
    ExchangeableLayer,
    ProductAction,
    SecondOrderEquivariantLayer,
    SymmetricAction,
    intertwiner_basis,
    set_partitions,
)
from deepsets.testing import assert_equivariant

S = SymmetricAction
F64 = torch.float64


def second_order_pair(n: int, c_in: int, c_out: int) -> tuple[nn.Module, EquivariantLinear]:
    """A sum-pooling second-order layer and the dense layer holding the same coordinates."""
    fast = SecondOrderEquivariantLayer(c_in, c_out, pool_type="sum").double()
    dense = EquivariantLinear(S(n, 2), S(n, 2), c_in, c_out).double()
    keep = [i for i, p in enumerate(set_partitions(4)) if max(p) < n]  # non-empty orbits
    with torch.no_grad():
        fast.bias.normal_()
        dense.weight.copy_(fast.weight[:, :, keep])
        dense.bias.copy_(fast.bias[:, : dense.bias.shape[1]])  # (diagonal, off-diagonal)
    return fast, dense


def exchangeable_pair(n1: int, n2: int, c_in: int, c_out: int) -> tuple[nn.Module, nn.Module]:
    action = ProductAction(S(n1), S(n2))
    fast = ExchangeableLayer(c_in, c_out, pool_type="sum").double()
    dense = EquivariantLinear(action, action, c_in, c_out).double()
    # Orbit order: (row same?, column same?) row-major; an axis of size 1 has no "other".
    keep = [2 * a + b for a in ([0] if n1 == 1 else [0, 1]) for b in ([0] if n2 == 1 else [0, 1])]
    with torch.no_grad():
        fast.bias.normal_()
        dense.weight.copy_(fast.weight[:, :, keep])
        dense.bias.copy_(fast.bias.view(-1, 1))
    return fast, dense


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------- second order


@given(
    n=st.integers(1, 6),
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_second_order_equals_equivariant_linear_with_the_same_coordinates(
    n: int, c_in: int, c_out: int, seed: int
) -> None:
    torch.manual_seed(seed)
    fast, dense = second_order_pair(n, c_in, c_out)
    x = torch.randn(3, n, n, c_in, dtype=F64)
    assert torch.allclose(fast(x).flatten(1, 2), dense(x.flatten(1, 2)), atol=1e-12)


def test_second_order_has_the_15_operations_of_maron_et_al() -> None:
    """Probing with basis inputs: the layer's dense matrix spans exactly the 15 orbit maps."""
    n = 5
    layer = SecondOrderEquivariantLayer(1, 1, pool_type="sum", bias=False).double()
    basis = intertwiner_basis(S(n, 2), S(n, 2), dtype=F64)
    assert basis.shape == (15, 25, 25) and basis[0].numel() == 625
    for k in range(15):  # coordinate e_k must reproduce the k-th orbit indicator
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[0, 0, k] = 1.0
        probe = torch.eye(n * n, dtype=F64).view(n * n, n, n, 1)  # column q of the matrix
        columns = layer(probe).view(n * n, n * n)  # row: input q, col: output p
        assert torch.equal(columns.T, basis[k])


@given(n=st.integers(1, 7), seed=st.integers(0, 2**16), pool=st.sampled_from(["sum", "mean"]))
def test_second_order_is_equivariant_under_random_permutations(
    n: int, seed: int, pool: str
) -> None:
    torch.manual_seed(seed)
    layer = SecondOrderEquivariantLayer(2, 3, pool_type=pool).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, n, n, 2, dtype=F64)
    assert_equivariant(layer, x, in_action=S(n, 2), generator=generator(seed))


def test_second_order_mean_pooling_does_not_grow_with_the_graph() -> None:
    """A constant edge tensor: every mean pool equals the constant, whatever N is."""
    layer = SecondOrderEquivariantLayer(2, 3, pool_type="mean").double()
    summed = SecondOrderEquivariantLayer(2, 3, pool_type="sum").double()
    summed.load_state_dict(layer.state_dict())
    value = torch.tensor([0.3, -1.2], dtype=F64)
    outputs = {}
    for n in (3, 8):
        x = value.expand(1, n, n, 2)
        outputs[n] = layer(x)
        off = outputs[n][0, 0, 1]
        assert torch.allclose(
            outputs[n][0].diagonal(dim1=0, dim2=1).T, outputs[n][0, 0, 0].expand(n, 3)
        )
        assert torch.allclose(outputs[n][0, 1, 0], off)
    assert torch.allclose(outputs[3][0, 0, 0], outputs[8][0, 0, 0])
    assert torch.allclose(outputs[3][0, 0, 1], outputs[8][0, 0, 1])
    # Sum pooling does grow: the two pools differ once N > 1.
    assert not torch.allclose(summed(value.expand(1, 8, 8, 2)), outputs[8])


def test_second_order_at_n100_never_builds_the_dense_basis() -> None:
    """Structure, not time: parameters and buffers do not depend on N; no dense basis."""
    layer = SecondOrderEquivariantLayer(4, 4)
    assert sum(p.numel() for p in layer.parameters()) == 15 * 4 * 4 + 2 * 4
    assert all(b.numel() <= 15 * 15 for b in layer.buffers())
    with pytest.raises(ValueError, match=r"6\.0 GB.*SecondOrderEquivariantLayer"):
        intertwiner_basis(S(100, 2), S(100, 2))
    x = torch.randn(1, 100, 100, 4)
    y = layer(x)
    assert y.shape == (1, 100, 100, 4)
    assert_equivariant(layer, x, in_action=S(100, 2), num_permutations=1)


# ----------------------------------------------------------------------- exchangeable


@given(
    n1=st.integers(1, 5),
    n2=st.integers(1, 5),
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_exchangeable_equals_equivariant_linear_with_the_same_coordinates(
    n1: int, n2: int, c_in: int, c_out: int, seed: int
) -> None:
    torch.manual_seed(seed)
    fast, dense = exchangeable_pair(n1, n2, c_in, c_out)
    x = torch.randn(2, n1, n2, c_in, dtype=F64)
    assert torch.allclose(fast(x).flatten(1, 2), dense(x.flatten(1, 2)), atol=1e-12)


def test_exchangeable_mean_is_hartfords_formula() -> None:
    """Orbit coordinates (a0..a3) of I⊗I, I⊗(J-I), (J-I)⊗I, (J-I)⊗(J-I), written as pools.

    Expanding the products gives the coefficients of X, of the row and column pools and of
    the total pool; ``pool_type="mean"`` averages each pool instead of summing it.
    """
    torch.manual_seed(0)
    layer = ExchangeableLayer(2, 3, pool_type="mean").double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 5, 2, dtype=F64)
    a = layer.weight  # (C_out, C_in, 4)
    theta_self = a[..., 0] - a[..., 1] - a[..., 2] + a[..., 3]
    theta_row = a[..., 1] - a[..., 3]
    theta_col = a[..., 2] - a[..., 3]
    theta_all = a[..., 3]
    expected = (
        x @ theta_self.T
        + x.mean(2, keepdim=True) @ theta_row.T
        + x.mean(1, keepdim=True) @ theta_col.T
        + x.mean((1, 2), keepdim=True) @ theta_all.T
        + layer.bias
    )
    assert torch.allclose(layer(x), expected, atol=1e-12)


@pytest.mark.parametrize("pool", ["sum", "mean"])
def test_exchangeable_mask_of_ragged_sizes_equals_the_cropped_matrices(pool: str) -> None:
    torch.manual_seed(0)
    layer = ExchangeableLayer(3, 2, pool_type=pool).double()
    with torch.no_grad():
        layer.bias.normal_()
    sizes = [(2, 5), (4, 1), (3, 3)]
    x = torch.randn(len(sizes), 4, 5, 3, dtype=F64)
    rows, cols = torch.arange(4).view(1, 4, 1), torch.arange(5).view(1, 1, 5)
    limits = torch.tensor(sizes)
    mask = (rows < limits[:, 0, None, None]) & (cols < limits[:, 1, None, None])
    out = layer(x.masked_fill(~mask.unsqueeze(-1), 1e3), mask)  # padding content is ignored
    for b, (n1, n2) in enumerate(sizes):
        alone = layer(x[b : b + 1, :n1, :n2])
        assert torch.allclose(out[b : b + 1, :n1, :n2], alone, atol=1e-10)
    assert torch.all(out[~mask] == 0)


@given(n1=st.integers(1, 5), n2=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_exchangeable_with_missing_entries_is_equivariant(n1: int, n2: int, seed: int) -> None:
    gen = generator(seed)
    layer = ExchangeableLayer(2, 2, pool_type="mean").double()
    x = torch.randn(3, n1, n2, 2, dtype=F64, generator=gen)
    mask = torch.rand(3, n1, n2, generator=gen) < 0.6  # missing ratings anywhere
    action = ProductAction(S(n1), S(n2))
    assert_equivariant(layer, x, mask, in_action=action, generator=gen)
    weights = torch.rand(3, n1, n2, dtype=F64, generator=gen) * mask  # weighted entries too
    assert_equivariant(layer, x, weights, in_action=action, generator=gen)


def test_exchangeable_padding_gets_no_gradient() -> None:
    layer = ExchangeableLayer(2, 2).double()
    x = torch.randn(1, 3, 4, 2, dtype=F64, requires_grad=True)
    mask = torch.ones(1, 3, 4, dtype=torch.bool)
    mask[0, 2] = False
    layer(x, mask).sum().backward()
    assert x.grad is not None
    assert torch.all(x.grad[0, 2] == 0) and x.grad[0, :2].abs().sum() > 0


# ----------------------------------------------------------------------- cyclic


@settings(max_examples=20)  # each FFT call costs ~10 ms on a busy 2-core machine
@given(
    n=st.integers(1, 9), c_in=st.integers(1, 3), c_out=st.integers(1, 3), seed=st.integers(0, 999)
)
def test_cyclic_conv_equals_equivariant_linear_and_is_equivariant(
    n: int, c_in: int, c_out: int, seed: int
) -> None:
    torch.manual_seed(seed)
    fast = CyclicConvLayer(n, c_in, c_out).double()
    dense = EquivariantLinear(CyclicAction(n), CyclicAction(n), c_in, c_out).double()
    with torch.no_grad():
        fast.bias.normal_()
        dense.weight.copy_(fast.weight)
        dense.bias.copy_(fast.bias.view(-1, 1))
    x = torch.randn(2, n, c_in, dtype=F64)
    out = fast(x)
    assert torch.allclose(out, dense(x), atol=1e-12)
    # Direct definition: y_i = Σ_t w_t x_{(i - t) mod n}.
    direct = sum(torch.roll(x, t, dims=1) @ fast.weight[:, :, t].T for t in range(n))
    assert torch.allclose(out, direct + fast.bias, atol=1e-12)
    assert_equivariant(
        fast, x, in_action=CyclicAction(n), num_permutations=2, generator=generator(seed)
    )


# ----------------------------------------------------------------------- first order


@given(n=st.integers(1, 8), c_in=st.integers(1, 3), c_out=st.integers(1, 3))
def test_first_order_deep_sets_layer_with_padding_equals_equivariant_linear(
    n: int, c_in: int, c_out: int
) -> None:
    """Lambda = a_id - a_off, Gamma = a_off: W = a_id I + a_off (J - I). Padding is ignored."""
    dense = EquivariantLinear(S(n), S(n), c_in, c_out).double()
    deep_sets = PermutationEquivariantLayer(c_in, c_out, pool_type="sum").double()
    off = dense.weight[:, :, 1] if n > 1 else torch.zeros_like(dense.weight[:, :, 0])
    with torch.no_grad():
        dense.bias.normal_()
        deep_sets.lambda_net.weight.copy_(dense.weight[:, :, 0] - off)
        deep_sets.lambda_net.bias.copy_(dense.bias[:, 0])
        deep_sets.gamma_net.weight.copy_(off)
    x = torch.randn(2, n + 2, c_in, dtype=F64)  # two padded positions
    mask = torch.arange(n + 2).expand(2, -1) < n
    out = deep_sets(x, mask)
    assert torch.allclose(out[:, :n], dense(x[:, :n]), atol=1e-12)
    assert torch.all(out[:, n:] == 0)
    assert_equivariant(deep_sets, x[:, :n], in_action=S(n))


# ----------------------------------------------------------------------- broken patterns


class OwnCoefficientsForNodeZero(nn.Module):
    """A fast layer whose node 0 gets its own coefficients: the sharing pattern is broken."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        out = self.layer(x) if mask is None else self.layer(x, mask)
        scale = torch.ones(out.shape[1], dtype=out.dtype)
        scale[0] = 1.5
        return out * scale.view(1, -1, *([1] * (out.dim() - 2)))


@pytest.mark.parametrize(
    ("layer", "shape", "action"),
    [
        (SecondOrderEquivariantLayer(2, 2), (2, 5, 5, 2), S(5, 2)),
        (ExchangeableLayer(2, 2), (2, 4, 3, 2), ProductAction(S(4), S(3))),
        (CyclicConvLayer(6, 2, 2), (2, 6, 2), CyclicAction(6)),
        (PermutationEquivariantLayer(2, 2, "sum"), (2, 6, 2), S(6)),
    ],
    ids=["second-order", "exchangeable", "cyclic", "first-order"],
)
def test_a_broken_coefficient_pattern_fails_assert_equivariant(layer, shape, action) -> None:
    torch.manual_seed(0)
    layer = layer.double()
    for p in layer.parameters():  # make every coefficient matter
        nn.init.normal_(p)
    x = torch.randn(*shape, dtype=F64)
    assert_equivariant(layer, x, in_action=action, generator=generator(0))  # intact: passes
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(
            OwnCoefficientsForNodeZero(layer),
            x,
            in_action=action,
            num_permutations=10,
            generator=generator(0),
        )


# ----------------------------------------------------------------------- errors and repr


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"pool_type.*'max'"):
        SecondOrderEquivariantLayer(2, 2, pool_type="max")
    with pytest.raises(ValueError, match="pool_type must be one of"):
        ExchangeableLayer(2, 2, pool_type="median")
    with pytest.raises(ValueError, match="input_dim"):
        SecondOrderEquivariantLayer(0, 2)
    with pytest.raises(ValueError, match=r"square.*\(2, 3, 4, 2\)"):
        SecondOrderEquivariantLayer(2, 2)(torch.randn(2, 3, 4, 2))
    with pytest.raises(ValueError, match=r"C = input_dim = 2.*\(2, 3, 3, 5\)"):
        SecondOrderEquivariantLayer(2, 2)(torch.randn(2, 3, 3, 5))
    with pytest.raises(TypeError, match="floating-point"):
        ExchangeableLayer(2, 2)(torch.ones(1, 3, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, N1, N2\) = \(1, 3, 4\)"):
        ExchangeableLayer(2, 2)(torch.randn(1, 3, 4, 2), torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-negative"):
        ExchangeableLayer(2, 2)(torch.randn(1, 3, 4, 2), -torch.ones(1, 3, 4))
    with pytest.raises(ValueError, match=r"\(B, 6, 2\).*\(2, 5, 2\)"):
        CyclicConvLayer(6, 2, 2)(torch.randn(2, 5, 2))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        CyclicConvLayer(6, 2, 2)([1.0])  # type: ignore[arg-type]


def test_parameter_counts_and_repr() -> None:
    cases = [
        (SecondOrderEquivariantLayer(3, 4), 15 * 3 * 4 + 2 * 4, "basis_size=15"),
        (ExchangeableLayer(3, 4), 4 * 3 * 4 + 4, "basis_size=4"),
        (CyclicConvLayer(7, 3, 4), 7 * 3 * 4 + 4, "basis_size=7"),
    ]
    for layer, count, text in cases:
        assert sum(p.numel() for p in layer.parameters()) == count
        assert text in repr(layer)
    assert SecondOrderEquivariantLayer(2, 2, bias=False).bias is None
    assert ExchangeableLayer(2, 2, pool_type="MEAN").pool_type == "mean"


LAYERS_AND_SHAPES = [
    (lambda: SecondOrderEquivariantLayer(2, 3), lambda b, n: (b, n, n, 2)),
    (lambda: ExchangeableLayer(2, 3), lambda b, n: (b, n, n + 1, 2)),
    (lambda: CyclicConvLayer(4, 2, 3), lambda b, n: (b, 4, 2)),
    (lambda: EquivariantLinear(S(4), S(4), 2, 3), lambda b, n: (b, 4, 2)),
]


@pytest.mark.parametrize(("make", "shape"), LAYERS_AND_SHAPES)
def test_empty_batches_and_empty_axes_give_empty_outputs(make, shape) -> None:
    layer = make()
    for batch, n in [(0, 3), (2, 0), (0, 0)]:
        x = torch.randn(shape(batch, n))
        out = layer(x)
        assert out.shape == (*x.shape[:-1], 3)


@pytest.mark.parametrize(("make", "shape"), LAYERS_AND_SHAPES)
def test_dtype_and_device_mismatches_name_x(make, shape) -> None:
    layer = make()
    x = torch.randn(shape(2, 3))
    with pytest.raises(TypeError, match=r"x has dtype torch\.float64 but the layer"):
        layer(x.double())
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        layer(x.to(torch.int64))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        layer(x > 0)
    with pytest.raises(ValueError, match="x is on meta but the layer is on cpu"):
        layer(x.to("meta"))
    assert layer.double()(x.double()).dtype == torch.float64  # matching dtypes are fine
