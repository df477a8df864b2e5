"""Bad input gets a clear error: the argument, what was expected, what was given.

Every entry point (the layer, the three models, ``masked_pool``) is checked for every bad
input of issue 3; option strings also list the allowed choices.
"""

from __future__ import annotations

import re
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
)
from deepsets._validation import (
    FusionType,
    PoolType,
    check_dim,
    check_dims,
    first_parameter,
    resolve_option,
)

D_IN = 3
D_CTX = 2
B, M = 2, 5
POOL_CHOICES = r"pool_type must be one of 'sum', 'mean', 'max'"

# ------------------------------------------------------- forward: every entry point

ENTRY_POINTS: dict[str, Callable[[], nn.Module]] = {
    "layer": lambda: PermutationEquivariantLayer(D_IN, 4),
    "invariant": lambda: DeepSetsInvariant(D_IN, [4], [4], 1),
    "equivariant": lambda: DeepSetsEquivariant(D_IN, [4], 1),
    "conditional": lambda: DeepSetsConditional(D_IN, D_CTX, [4], [4], 1),
    "pool": lambda: _Pool(),
}


class _Pool(nn.Module):
    """``masked_pool`` behind the models' call signature, to share the table below."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return masked_pool(x, "max", mask)


def _call(model: nn.Module, x: Any, mask: Any = None, context: Any = None) -> Tensor:
    if isinstance(model, DeepSetsConditional):
        return model(x, torch.randn(B, D_CTX) if context is None else context, mask)
    return model(x, mask)


# (x, mask, regex) — regexes name the argument, the expected and the actual value
BAD_FORWARD_INPUTS: dict[str, tuple[Tensor, Tensor | None, str]] = {
    "x 2-D": (
        torch.randn(M, D_IN),
        None,
        r"x must have shape \(B, M, D\).*got 2-D shape \(5, 3\)",
    ),
    "x 4-D": (
        torch.randn(B, M, D_IN, 1),
        None,
        r"x must have shape \(B, M, D\).*got 4-D shape \(2, 5, 3, 1\)",
    ),
    "mask shape": (
        torch.randn(B, M, D_IN),
        torch.ones(B, M - 1, dtype=torch.bool),
        r"mask must have shape \(B, M\) = \(2, 5\) to match x of shape \(2, 5, 3\); "
        r"got shape \(2, 4\)",
    ),
    "mask 3-D": (
        torch.randn(B, M, D_IN),
        torch.ones(B, M, 1),
        r"mask must have shape \(B, M\) = \(2, 5\).*got shape \(2, 5, 1\)",
    ),
    "mask transposed": (
        torch.randn(B, M, D_IN),
        torch.ones(M, B, dtype=torch.bool),
        r"mask must have shape \(B, M\) = \(2, 5\).*got shape \(5, 2\)",
    ),
    "negative weight": (
        torch.randn(B, M, D_IN),
        torch.tensor([[1.0, 1.0, -0.5, 1.0, 0.0], [1.0] * M]),
        r"mask weights must be finite and non-negative.*found -0\.5",
    ),
    "nan weight": (
        torch.randn(B, M, D_IN),
        torch.tensor([[1.0, float("nan"), 1.0, 1.0, 0.0], [1.0] * M]),
        r"mask weights must be finite and non-negative.*found nan",
    ),
    "inf weight": (
        torch.randn(B, M, D_IN),
        torch.tensor([[1.0, float("inf"), 1.0, 1.0, 0.0], [1.0] * M]),
        r"mask weights must be finite and non-negative.*found inf",
    ),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("case", sorted(BAD_FORWARD_INPUTS))
def test_bad_forward_input(entry: str, case: str) -> None:
    x, mask, pattern = BAD_FORWARD_INPUTS[case]
    with pytest.raises(ValueError, match=pattern):
        _call(ENTRY_POINTS[entry](), x, mask)


@pytest.mark.parametrize("entry", sorted(set(ENTRY_POINTS) - {"pool"}))
@given(width=st.integers(1, 8).filter(lambda w: w != D_IN))
def test_wrong_feature_width(entry: str, width: int) -> None:
    model = ENTRY_POINTS[entry]()
    pattern = rf"x must have {D_IN} features .*\(B, M, {D_IN}\)\); got shape \(2, 5, {width}\)"
    with pytest.raises(ValueError, match=pattern):
        _call(model, torch.randn(B, M, width))


@pytest.mark.parametrize(
    ("context", "shape"),
    [
        (torch.randn(B + 1, D_CTX), r"\(3, 2\)"),  # batch
        (torch.randn(B, D_CTX + 1), r"\(2, 3\)"),  # width
        (torch.randn(B), r"\(2,\)"),  # no feature dimension; written as a 1-tuple
        (torch.randn(B, 1, D_CTX), r"\(2, 1, 2\)"),  # one per element, not per set
    ],
)
def test_bad_context(context: Tensor, shape: str) -> None:
    model = DeepSetsConditional(D_IN, D_CTX, [4], [4], 1)
    pattern = rf"context must have shape \(B, context_dim\) = \(2, 2\); got shape {shape}"
    with pytest.raises(ValueError, match=pattern):
        model(torch.randn(B, M, D_IN), context)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_wrong_types_are_type_errors(entry: str) -> None:
    model = ENTRY_POINTS[entry]()
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor .*got list"):
        _call(model, [[[0.0] * D_IN]])
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor; got dtype torch\.int"):
        _call(model, torch.zeros(B, M, D_IN, dtype=torch.long))
    with pytest.raises(TypeError, match=r"mask must be a bool tensor or a floating .*torch\.int"):
        _call(model, torch.randn(B, M, D_IN), torch.ones(B, M, dtype=torch.long))
    with pytest.raises(TypeError, match=r"mask must be a torch\.Tensor .*got list"):
        _call(model, torch.randn(B, M, D_IN), [[True] * M] * B)


@pytest.mark.parametrize("entry", sorted(set(ENTRY_POINTS) - {"pool"}))
def test_dtype_mismatch_names_both_dtypes(entry: str) -> None:
    model = ENTRY_POINTS[entry]()
    with pytest.raises(TypeError, match=r"x has dtype torch\.float64 but the model .*float32"):
        _call(model, torch.randn(B, M, D_IN, dtype=torch.float64))


def test_zero_weights_and_empty_masks_are_valid() -> None:
    """Not errors: weight 0 is padding and an all-zero mask is an empty set."""
    x = torch.randn(B, M, D_IN)
    for mask in [torch.zeros(B, M), torch.zeros(B, M, dtype=torch.bool)]:
        for entry in ENTRY_POINTS.values():
            assert bool(torch.isfinite(_call(entry(), x, mask)).all())


# --------------------------------------------------------------------- options


@given(
    bad=st.text(min_size=0, max_size=8).filter(
        lambda s: s.lower() not in PoolType._value2member_map_
    )
)
def test_unknown_pool_type_lists_the_choices(bad: str) -> None:
    pattern = POOL_CHOICES + "; got " + re.escape(repr(bad))
    for build in [
        lambda: PermutationEquivariantLayer(D_IN, 2, pool_type=bad),
        lambda: DeepSetsInvariant(D_IN, [4], [4], 1, pool_type=bad),
        lambda: DeepSetsEquivariant(D_IN, [4], 1, pool_type=bad),
        lambda: DeepSetsConditional(D_IN, D_CTX, [4], [4], 1, pool_type=bad),
        lambda: masked_pool(torch.randn(B, M, D_IN), bad),
    ]:
        with pytest.raises(ValueError, match=pattern):
            build()


def test_unknown_final_pool_lists_the_choices() -> None:
    with pytest.raises(
        ValueError, match=r"final_pool must be one of 'sum', 'mean', 'max'; got 'min'"
    ):
        DeepSetsEquivariant(D_IN, [4], 1, final_pool="min")


@pytest.mark.parametrize("bad", ["mul", "", "FiLMs", 3, None])
def test_unknown_fusion_type_lists_the_choices(bad: object) -> None:
    pattern = r"fusion_type must be one of 'concat', 'film', 'add'; got " + re.escape(repr(bad))
    with pytest.raises(ValueError, match=pattern):
        DeepSetsConditional(D_IN, D_CTX, [4], [4], 1, fusion_type=bad)  # type: ignore[arg-type]


def test_non_string_pool_type_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=POOL_CHOICES + "; got 1"):
        DeepSetsInvariant(D_IN, [4], [4], 1, pool_type=1)  # type: ignore[arg-type]


def test_options_are_resolved_once_to_enum_members() -> None:
    assert DeepSetsInvariant(D_IN, [4], [4], 1, pool_type="MEAN").pool is PoolType.MEAN
    conditional = DeepSetsConditional(D_IN, D_CTX, [4], [4], 1, fusion_type=FusionType.FILM)
    assert conditional.fusion is FusionType.FILM
    assert conditional.fusion_type == "film"
    assert resolve_option("Sum", PoolType, name="p") is PoolType.SUM
    assert resolve_option(PoolType.MAX, PoolType, name="p") is PoolType.MAX


def test_context_in_rho_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match=r"context_in_rho must be a bool; got 'yes'"):
        DeepSetsConditional(D_IN, D_CTX, [4], [4], 1, context_in_rho="yes")  # type: ignore[arg-type]


def test_keepdim_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"keepdim must be a bool; got 1"):
        masked_pool(torch.randn(B, M, D_IN), "sum", keepdim=1)  # type: ignore[arg-type]


# ------------------------------------------------------------------ dimensions

BAD_DIMS = [0, -1, 2.5, True, "3", None]


def _layer(input_dim: Any = D_IN, output_dim: Any = 2) -> Any:
    return PermutationEquivariantLayer(input_dim, output_dim)


def _invariant(
    input_dim: Any = D_IN,
    phi_hidden_dims: Any = (4,),
    rho_hidden_dims: Any = (4,),
    output_dim: Any = 1,
) -> Any:
    return DeepSetsInvariant(input_dim, phi_hidden_dims, rho_hidden_dims, output_dim)


def _equivariant(input_dim: Any = D_IN, hidden_dims: Any = (4,), output_dim: Any = 1) -> Any:
    return DeepSetsEquivariant(input_dim, hidden_dims, output_dim)


def _conditional(
    input_dim: Any = D_IN,
    context_dim: Any = D_CTX,
    phi_hidden_dims: Any = (4,),
    rho_hidden_dims: Any = (4,),
    output_dim: Any = 1,
) -> Any:
    return DeepSetsConditional(input_dim, context_dim, phi_hidden_dims, rho_hidden_dims, output_dim)


CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "layer": _layer,
    "invariant": _invariant,
    "equivariant": _equivariant,
    "conditional": _conditional,
}
SCALAR_DIMS = [
    ("layer", "input_dim"),
    ("layer", "output_dim"),
    ("invariant", "input_dim"),
    ("invariant", "output_dim"),
    ("equivariant", "input_dim"),
    ("equivariant", "output_dim"),
    ("conditional", "input_dim"),
    ("conditional", "context_dim"),
    ("conditional", "output_dim"),
]
LIST_DIMS = [
    ("invariant", "phi_hidden_dims"),
    ("invariant", "rho_hidden_dims"),
    ("equivariant", "hidden_dims"),
    ("conditional", "phi_hidden_dims"),
    ("conditional", "rho_hidden_dims"),
]


@pytest.mark.parametrize(("entry", "argument"), SCALAR_DIMS)
@pytest.mark.parametrize("bad", BAD_DIMS)
def test_non_positive_dims(entry: str, argument: str, bad: object) -> None:
    pattern = rf"{argument} must be a positive int; got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=pattern):
        CONSTRUCTORS[entry](**{argument: bad})


@pytest.mark.parametrize(("entry", "argument"), LIST_DIMS)
@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_non_positive_hidden_widths_name_their_index(
    entry: str, argument: str, bad: object
) -> None:
    pattern = rf"{argument}\[1\] must be a positive int; got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=pattern):
        CONSTRUCTORS[entry](**{argument: [4, bad]})


@pytest.mark.parametrize(("entry", "argument"), LIST_DIMS)
@pytest.mark.parametrize("bad", [4, "44", None])
def test_hidden_dims_must_be_a_sequence(entry: str, argument: str, bad: object) -> None:
    pattern = rf"{argument} must be a sequence of positive ints; got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=pattern):
        CONSTRUCTORS[entry](**{argument: bad})


def test_check_dim_helpers_accept_good_values() -> None:
    assert check_dim(3, name="d") == 3
    assert check_dims((1, 2), name="d") == [1, 2]
    assert check_dims([], name="d") == []


class _Index:
    """An integer type that is not ``int`` (as NumPy's are): it only has ``__index__``."""

    def __index__(self) -> int:
        return 4


def test_check_dim_takes_integer_types_and_returns_a_python_int() -> None:
    width = check_dim(_Index(), name="d")
    assert width == 4 and type(width) is int
    model = DeepSetsInvariant(D_IN, [_Index()], [4], 1)  # type: ignore[list-item]
    assert model(torch.randn(B, M, D_IN)).shape == (B, 1)


@pytest.mark.parametrize("bad", [True, 2.0, "3", None, 0])
def test_check_dim_rejects_what_is_not_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match=rf"d must be a positive int; got {re.escape(repr(bad))}"):
        check_dim(bad, name="d")


# --------------------------------------------------------------------- dropout


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "0.1", None, True])
@pytest.mark.parametrize("model", ["invariant", "equivariant"])
def test_dropout_out_of_range(model: str, bad: object) -> None:
    pattern = rf"dropout must be a float in \[0, 1\); got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=pattern):
        if model == "invariant":
            DeepSetsInvariant(D_IN, [4], [4], 1, dropout=bad)  # type: ignore[arg-type]
        else:
            DeepSetsEquivariant(D_IN, [4], 1, dropout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("good", [0, 0.0, 0.5, 0.99])
def test_dropout_in_range(good: float) -> None:
    assert DeepSetsInvariant(D_IN, [4], [4], 1, dropout=good).config["dropout"] == good


class _OwnAndChildren(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.child = nn.Linear(2, 2)
        self.own = nn.Parameter(torch.zeros(1))  # registered after the child, yielded first


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.empty = nn.ReLU()
        self.missing: nn.Module | None = None
        self.first = nn.Sequential(nn.ReLU(), nn.Linear(3, 3))
        self.second = self.first  # shared


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeepSetsInvariant(D_IN, [4], [4], 1),
        lambda: DeepSetsConditional(D_IN, D_CTX, [4], [4], 1, fusion_type="film"),
        lambda: DeepSetsEquivariant(D_IN, [4], 1),
        lambda: PermutationEquivariantLayer(D_IN, 4),
        _OwnAndChildren,
        _Shared,
        lambda: nn.Sequential(nn.ReLU(), nn.Identity()),
    ],
)
def test_first_parameter_is_the_first_of_parameters(make: Callable[[], nn.Module]) -> None:
    module = make()
    assert first_parameter(module) is next(iter(module.parameters()), None)
