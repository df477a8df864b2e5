"""``deepsets.FourierFeatures``: the definition, the shift symmetry, periods, products with
values, packed (jagged) input, compile, and bad input.

Expected values come from the formula, evaluated in Python floats with ``math.cos``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch._dynamo
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from torch._dynamo.utils import counters

from deepsets import FourierFeatures, pack_sets

SEEDS = st.integers(0, 2**31 - 1)
PERIODS = st.sampled_from([2 * math.pi, 1.0, 0.37, 10.0, 365.25])


def reference(x: Tensor, num_frequencies: int, period: float) -> Tensor:
    """``[cos(2π j x / P)]_j ⊕ [sin(2π j x / P)]_j`` one scalar at a time, in Python floats."""
    rows = []
    for value in x.reshape(-1).tolist():
        angles = [2 * math.pi * j * value / period for j in range(1, num_frequencies + 1)]
        rows.append([math.cos(a) for a in angles] + [math.sin(a) for a in angles])
    return torch.tensor(rows, dtype=torch.float64).reshape(*x.shape, 2 * num_frequencies)


@given(
    seed=SEEDS,
    num_frequencies=st.integers(1, 6),
    period=PERIODS,
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
)
def test_features_follow_the_definition(
    seed: int, num_frequencies: int, period: float, shape: list[int]
) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=generator, dtype=torch.float64) - 0.5) * 4 * period
    out = FourierFeatures(num_frequencies, period=period)(x)
    assert out.shape == (*shape, 2 * num_frequencies)
    torch.testing.assert_close(out, reference(x, num_frequencies, period), atol=1e-12, rtol=0)


@given(seed=SEEDS, num_frequencies=st.integers(1, 6), period=PERIODS, shift=st.floats(-50, 50))
def test_a_shift_rotates_every_pair_by_omega_j_c(
    seed: int, num_frequencies: int, period: float, shift: float
) -> None:
    """ψ(x + c) = R(ωjc) ψ(x) pair by pair, so a_j² + b_j² of pooled linear statistics
    (a_j, b_j) = Σ_n y_n (cos ωjx_n, sin ωjx_n) do not change."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 7, generator=generator, dtype=torch.float64) * period
    y = torch.randn(3, 7, generator=generator, dtype=torch.float64)
    encoder = FourierFeatures(num_frequencies, period=period)
    j = num_frequencies
    before, after = encoder(x), encoder(x + shift)
    angle = torch.arange(1, j + 1, dtype=torch.float64) * (2 * math.pi / period) * shift
    cos, sin = angle.cos(), angle.sin()
    rotated_cos = cos * before[..., :j] - sin * before[..., j:]
    rotated_sin = sin * before[..., :j] + cos * before[..., j:]
    torch.testing.assert_close(after, torch.cat([rotated_cos, rotated_sin], -1), atol=1e-9, rtol=0)

    def power(features: Tensor) -> Tensor:
        pooled = (y.unsqueeze(-1) * features).sum(1)  # (B, 2J)
        return pooled[:, :j].square() + pooled[:, j:].square()

    torch.testing.assert_close(power(after), power(before), atol=1e-8, rtol=1e-8)


@given(seed=SEEDS, num_frequencies=st.integers(1, 5), period=PERIODS, turns=st.integers(-3, 3))
def test_features_have_the_given_period(
    seed: int, num_frequencies: int, period: float, turns: int
) -> None:
    x = torch.rand(10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    encoder = FourierFeatures(num_frequencies, period=period)
    torch.testing.assert_close(encoder(x + turns * period), encoder(x), atol=1e-9, rtol=0)


def test_default_period_is_two_pi_and_a_unit_period_rescales() -> None:
    x = torch.linspace(-1, 1, 9, dtype=torch.float64)
    default = FourierFeatures(4)(2 * math.pi * x)
    torch.testing.assert_close(default, FourierFeatures(4, period=1)(x), atol=1e-12, rtol=0)
    assert FourierFeatures(4).period == 2 * math.pi


@given(seed=SEEDS, num_frequencies=st.integers(1, 4), num_values=st.integers(1, 3))
def test_products_with_values_are_the_explicit_outer_product(
    seed: int, num_frequencies: int, num_values: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 5, generator=generator, dtype=torch.float64) * 7
    values = torch.randn(2, 5, num_values, generator=generator, dtype=torch.float64)
    encoder = FourierFeatures(num_frequencies)
    out = encoder(x, values)
    width = 2 * num_frequencies
    assert out.shape == (2, 5, encoder.output_dim(num_values))
    assert encoder.output_dim(num_values) == width * (1 + num_values)
    psi = reference(x, num_frequencies, 2 * math.pi)
    torch.testing.assert_close(out[..., :width], psi, atol=1e-12, rtol=0)
    for f in range(width):  # feature 2J + f·V + k is ψ_f · v_k
        for k in range(num_values):
            expected = psi[..., f] * values[..., k]
            torch.testing.assert_close(
                out[..., width + f * num_values + k], expected, atol=1e-12, rtol=0
            )


def test_module_dtype_casts_keep_the_frequencies_exact() -> None:
    """``.half()`` / ``.float()`` on a containing model must not round ωj for float64 input."""
    encoder = FourierFeatures(64, period=0.3).half()
    x = torch.rand(50, dtype=torch.float64)
    torch.testing.assert_close(encoder(x), reference(x, 64, 0.3), atol=1e-10, rtol=0)
    assert not list(encoder.parameters())
    assert encoder.state_dict() == {}


@given(seed=SEEDS, sizes=st.lists(st.integers(0, 6), min_size=1, max_size=4))
def test_jagged_input_equals_each_set_alone(seed: int, sizes: list[int]) -> None:
    generator = torch.Generator().manual_seed(seed)
    xs = [torch.rand(n, generator=generator, dtype=torch.float64) * 6 for n in sizes]
    ys = [torch.randn(n, 2, generator=generator, dtype=torch.float64) for n in sizes]
    values = pack_sets(ys)
    x = torch.nested.nested_tensor_from_jagged(torch.cat(xs), values.offsets())
    encoder = FourierFeatures(3, period=2.5)
    plain, with_values = encoder(x), encoder(x, values)
    assert plain.is_nested and with_values.is_nested
    assert torch.equal(with_values.offsets(), values.offsets())
    for b, (xb, yb) in enumerate(zip(xs, ys, strict=True)):
        torch.testing.assert_close(plain[b], encoder(xb), atol=0, rtol=0)
        torch.testing.assert_close(with_values[b], encoder(xb, yb), atol=0, rtol=0)


def test_gradient_reaches_x_and_values() -> None:
    x = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 4, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: FourierFeatures(3)(a, b), (x, values))


def test_compiles_without_graph_breaks() -> None:
    torch._dynamo.reset()
    counters.clear()
    encoder = FourierFeatures(5, period=3.0)
    compiled = torch.compile(encoder, fullgraph=True, backend="eager")
    for batch, size in [(2, 5), (4, 9), (3, 7)]:
        x, values = torch.rand(batch, size), torch.randn(batch, size, 2)
        torch.testing.assert_close(compiled(x, values), encoder(x, values))
    assert dict(counters["graph_break"]) == {}
    torch._dynamo.reset()


def test_extra_repr_and_output_dim() -> None:
    encoder = FourierFeatures(8, period=365.25)
    assert repr(encoder) == "FourierFeatures(num_frequencies=8, period=365.25)"
    assert encoder.output_dim() == 16
    assert encoder.output_dim(3) == 64


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"num_frequencies": 2.0}, TypeError, ["num_frequencies", "int", "float"]),
        ({"num_frequencies": True}, TypeError, ["num_frequencies", "bool"]),
        ({"num_frequencies": 0}, ValueError, ["num_frequencies", ">= 1", "got 0"]),
        ({"num_frequencies": 2, "period": "1"}, TypeError, ["period", "str"]),
        ({"num_frequencies": 2, "period": -1.0}, ValueError, ["period", "positive", "-1.0"]),
        ({"num_frequencies": 2, "period": math.inf}, ValueError, ["period", "finite", "inf"]),
    ],
)
def test_bad_options_name_the_argument(
    kwargs: dict[str, object], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as info:
        FourierFeatures(**kwargs)  # type: ignore[arg-type]
    for word in words:
        assert word in str(info.value)


def test_bad_num_values_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"num_values must be a non-negative int; got -1"):
        FourierFeatures(2).output_dim(-1)


def test_bad_input_names_the_argument_expected_and_actual() -> None:
    encoder = FourierFeatures(2)
    x = torch.rand(2, 5)
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor.*got list"):
        encoder([0.1, 0.2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor; got dtype torch.int"):
        encoder(torch.arange(5))
    with pytest.raises(ValueError, match=r"values must have shape \(\*x.shape, V\) = \(2, 5, V\)"):
        encoder(x, torch.randn(2, 4, 1))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        encoder(x, torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"values has dtype torch.float64 but x has dtype torch"):
        encoder(x, torch.randn(2, 5, 1, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"values must be a floating-point tensor"):
        encoder(x, torch.ones(2, 5, 1, dtype=torch.long))
    with pytest.raises(TypeError, match=r"values must be a torch.Tensor"):
        encoder(x, [1.0])  # type: ignore[arg-type]


def test_bad_jagged_input_is_rejected() -> None:
    encoder = FourierFeatures(2)
    values = pack_sets([torch.randn(n, 1) for n in (2, 3)])
    x = torch.nested.nested_tensor_from_jagged(torch.rand(5), values.offsets())
    with pytest.raises(ValueError, match=r"values for a jagged x must be a jagged nested tensor"):
        encoder(x, torch.randn(2, 3, 1))
    other = pack_sets([torch.randn(n, 1) for n in (3, 2)])
    with pytest.raises(ValueError, match=r"values must have the same set sizes as x"):
        encoder(x, other)
    with pytest.raises(ValueError, match=r"packed x must be a jagged nested tensor"):
        encoder(torch.rand(2, 5), values)
