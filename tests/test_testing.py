"""``deepsets.testing``: the public symmetry checks pass on good models and catch broken ones.

Sections:
    1. fixtures: good models of every type and deliberately broken wrappers
    2. permutation checks pass on every good model
    3. permutation checks raise on every broken model
    4. options: args/kwargs, tolerances, generator, shape checks
    (group-action checks, ``in_action`` / ``out_action``, go in their own section below)
"""

from __future__ import annotations

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
from deepsets.testing import (
    assert_equivariant,
    assert_invariant,
    equivariance_error,
    invariance_error,
    saved_tensor_bytes,
)

D_IN = 3
D_CTX = 2

# ================================================================= 1. fixtures

INVARIANT: dict[str, Callable[[], nn.Module]] = {
    "invariant-sum": lambda: DeepSetsInvariant(D_IN, [6], [5], 2, pool_type="sum"),
    "invariant-mean": lambda: DeepSetsInvariant(D_IN, [6], [5], 2, pool_type="mean"),
    "invariant-max": lambda: DeepSetsInvariant(D_IN, [6], [5], 2, pool_type="max"),
    "equivariant-final-pool": lambda: DeepSetsEquivariant(D_IN, [6], 2, final_pool="sum"),
    "conditional-concat": lambda: DeepSetsConditional(D_IN, D_CTX, [6], [5], 2),
    "conditional-film": lambda: DeepSetsConditional(D_IN, D_CTX, [6], [5], 2, fusion_type="film"),
    "conditional-add": lambda: DeepSetsConditional(D_IN, D_CTX, [6], [5], 2, fusion_type="add"),
}
EQUIVARIANT: dict[str, Callable[[], nn.Module]] = {
    "layer-max": lambda: PermutationEquivariantLayer(D_IN, 4, "max"),
    "layer-mean": lambda: PermutationEquivariantLayer(D_IN, 4, "mean"),
    "equivariant-sum": lambda: DeepSetsEquivariant(D_IN, [6, 5], 2, pool_type="sum"),
    "equivariant-max": lambda: DeepSetsEquivariant(D_IN, [6, 5], 2, pool_type="max"),
}


def _build(factory: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return factory().double().eval()


def _extra(model: nn.Module, batch: int) -> tuple[Tensor, ...]:
    """The non-permuted positional inputs: a context for conditional models."""
    if isinstance(model, DeepSetsConditional):
        return (torch.randn(batch, D_CTX, dtype=torch.float64),)
    return ()


def _positions(x: Tensor) -> Tensor:
    """``(1, M, 1)``: 1, 2, ..., M — a term that knows where an element sits."""
    return torch.arange(1, x.shape[1] + 1, dtype=x.dtype).view(1, -1, 1)


class PositionInInput(nn.Module):
    """Breaks any set model: adds ``scale · position`` to every element before the model."""

    def __init__(self, model: nn.Module, scale: float = 0.1) -> None:
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(self, x: Tensor, *args: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.model(x + self.scale * _positions(x), *args, mask=mask)


class PositionWeightedReadout(nn.Module):
    """Breaks an invariant model: adds ``scale · Σ_i i · x_i`` to its output."""

    def __init__(self, model: nn.Module, scale: float = 1e-3) -> None:
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(self, x: Tensor, *args: Tensor, mask: Tensor | None = None) -> Tensor:
        out = self.model(x, *args, mask=mask)
        return out + self.scale * (x * _positions(x)).sum(dim=(1, 2)).unsqueeze(-1)


class FirstElementBroadcast(nn.Module):
    """Breaks an equivariant model: every element also sees the *first* element."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.model(x + x[:, :1], mask=mask)


def _inputs(seed: int, batch: int, size: int, masked: bool) -> tuple[Tensor, Tensor | None]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, D_IN, generator=generator, dtype=torch.float64)
    if not masked:
        return x, None
    mask = torch.rand(batch, size, generator=generator) < 0.7
    mask[:, :2] = True  # at least two members, so a permutation can move something
    return x, mask


# ====================================================== 2. good models pass


@pytest.mark.parametrize("name", sorted(INVARIANT))
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(1, 6), masked=st.booleans())
def test_invariant_models_pass(name: str, seed: int, size: int, masked: bool) -> None:
    model = _build(INVARIANT[name])
    x, mask = _inputs(seed, 3, max(size, 2), masked)
    generator = torch.Generator().manual_seed(seed)
    assert_invariant(model, x, mask, args=_extra(model, 3), generator=generator)


@pytest.mark.parametrize("name", sorted(EQUIVARIANT))
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(1, 6), masked=st.booleans())
def test_equivariant_models_pass(name: str, seed: int, size: int, masked: bool) -> None:
    model = _build(EQUIVARIANT[name])
    x, mask = _inputs(seed, 3, max(size, 2), masked)
    assert_equivariant(model, x, mask, generator=torch.Generator().manual_seed(seed))


def test_float32_models_pass_with_default_tolerances() -> None:
    torch.manual_seed(0)
    assert_invariant(DeepSetsInvariant(D_IN, [32], [32], 1).eval(), torch.randn(8, 50, D_IN))
    assert_equivariant(DeepSetsEquivariant(D_IN, [32], 4).eval(), torch.randn(8, 50, D_IN))


# ===================================================== 3. broken models raise


@pytest.mark.parametrize("name", sorted(INVARIANT))
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("breaker", [PositionInInput, PositionWeightedReadout])
def test_assert_invariant_catches_a_position_dependent_term(
    name: str, masked: bool, breaker: Callable[[nn.Module], nn.Module]
) -> None:
    model = _build(INVARIANT[name])
    x, mask = _inputs(0, 3, 6, masked)
    args = _extra(model, 3)
    assert_invariant(model, x, mask, args=args)  # the unbroken model passes
    with pytest.raises(AssertionError, match=r"not permutation invariant.*max abs deviation"):
        assert_invariant(breaker(model), x, mask, args=args)


@pytest.mark.parametrize("name", sorted(EQUIVARIANT))
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("breaker", [PositionInInput, FirstElementBroadcast])
def test_assert_equivariant_catches_a_position_dependent_term(
    name: str, masked: bool, breaker: Callable[[nn.Module], nn.Module]
) -> None:
    model = _build(EQUIVARIANT[name])
    x, mask = _inputs(0, 3, 6, masked)
    assert_equivariant(model, x, mask)
    with pytest.raises(AssertionError, match=r"not permutation equivariant.*max abs deviation"):
        assert_equivariant(breaker(model), x, mask)


@pytest.mark.parametrize("name", sorted(EQUIVARIANT))
def test_assert_invariant_rejects_equivariant_models(name: str) -> None:
    """Equivariant is not invariant: a per-element output follows the permutation."""
    model = _build(EQUIVARIANT[name])
    x, _ = _inputs(0, 2, 6, masked=False)
    with pytest.raises(AssertionError, match="not permutation invariant"):
        assert_invariant(model, x)


def test_assert_equivariant_rejects_a_set_level_output() -> None:
    model = _build(INVARIANT["invariant-sum"])
    x, _ = _inputs(0, 2, 6, masked=False)
    with pytest.raises(AssertionError, match=r"keeps the \(B, M\) dimensions"):
        assert_equivariant(model, x)


def test_a_model_that_ignores_the_mask_is_caught() -> None:
    """If padding leaks into the output, permuting (x, mask) together moves the padding."""

    def leaky(x: Tensor, mask: Tensor | None = None) -> Tensor:
        return x.sum(dim=1) + 0.01 * x[:, -1]  # reads the last slot whether padding or not

    x, _ = _inputs(0, 2, 5, masked=False)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    with pytest.raises(AssertionError, match="not permutation invariant"):
        assert_invariant(leaky, x, mask)


# ================================================================== 4. options


def test_kwargs_are_passed_unpermuted() -> None:
    model = _build(INVARIANT["conditional-film"])
    x, mask = _inputs(0, 2, 5, masked=True)
    context = torch.randn(2, D_CTX, dtype=torch.float64)
    assert_invariant(model, x, mask, kwargs={"context": context})


def test_tolerances_decide_what_counts_as_broken() -> None:
    model = PositionWeightedReadout(_build(INVARIANT["invariant-sum"]), scale=1e-6)
    x, _ = _inputs(0, 2, 5, masked=False)
    with pytest.raises(AssertionError):
        assert_invariant(model, x)  # float64 default: atol 1e-10
    assert_invariant(model, x, atol=1e-3, rtol=0.0)


def test_plain_callables_are_accepted() -> None:
    x, _ = _inputs(0, 2, 5, masked=False)
    assert_invariant(lambda t: t.amax(dim=1), x)
    assert_equivariant(lambda t: t - t.mean(dim=1, keepdim=True), x)
    with pytest.raises(AssertionError):
        assert_equivariant(lambda t: t.cumsum(dim=1), x)


def test_generator_makes_the_trials_reproducible() -> None:
    broken = PositionInInput(_build(EQUIVARIANT["layer-max"]))
    x, _ = _inputs(0, 2, 6, masked=False)
    messages = []
    for _ in range(2):
        with pytest.raises(AssertionError) as info:
            assert_equivariant(broken, x, generator=torch.Generator().manual_seed(7))
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_zero_permutations_check_nothing() -> None:
    broken = PositionInInput(_build(EQUIVARIANT["layer-max"]))
    x, _ = _inputs(0, 2, 6, masked=False)
    assert_equivariant(broken, x, num_permutations=0)


# ================================================= 5. group actions (in_action / out_action)


def test_action_arguments_are_keyword_only_and_the_old_call_still_works() -> None:
    from deepsets.equivariance import SymmetricAction

    model = _build(EQUIVARIANT["layer-mean"])
    x, mask = _inputs(0, 2, 5, masked=True)
    assert_equivariant(model, x, mask, args=(), kwargs=None, num_permutations=2, atol=None)
    with pytest.raises(TypeError):
        assert_equivariant(model, x, mask, (), None, 3, None, None, None, SymmetricAction(5))  # type: ignore[misc]
    # The first-order action is the plain permutation check, applied to the whole batch.
    assert_equivariant(model, x, mask, in_action=SymmetricAction(5))
    assert_invariant(_build(INVARIANT["invariant-sum"]), x, mask, in_action=SymmetricAction(5))


@given(n=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_edge_models_are_checked_under_the_second_order_action(n: int, seed: int) -> None:
    from deepsets.equivariance import SymmetricAction

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n, n, 3, dtype=torch.float64, generator=gen)

    def edge_model(t: Tensor) -> Tensor:  # X, Xᵀ and row sums: equivariant on edges
        return t + 2 * t.transpose(1, 2) + t.sum(dim=2, keepdim=True)

    action = SymmetricAction(n, 2)
    assert_equivariant(edge_model, x, in_action=action, generator=gen)  # natural (N, N) axes
    assert_equivariant(edge_model_flat(edge_model, n), x.flatten(1, 2), in_action=action)
    assert_invariant(lambda t: edge_model(t).sum(dim=(1, 2)), x, in_action=action)
    if n >= 2:  # only node 0 sees the diagonal: not equivariant
        with pytest.raises(AssertionError, match="not equivariant"):
            assert_equivariant(
                lambda t: edge_model(t) + t[:, :1, :1],
                x,
                in_action=action,
                num_permutations=20,
                generator=gen,
            )


def edge_model_flat(model: Callable[[Tensor], Tensor], n: int) -> Callable[[Tensor], Tensor]:
    """The same model on the flattened ``(B, N², C)`` layout."""
    return lambda t: model(t.unflatten(1, (n, n))).flatten(1, 2)


def test_different_input_and_output_actions() -> None:
    from deepsets.equivariance import SymmetricAction

    x = torch.randn(3, 4, 2, dtype=torch.float64)

    def outer(t: Tensor) -> Tensor:  # nodes -> edges: (B, N, C) -> (B, N, N, C)
        return t.unsqueeze(2) * t.unsqueeze(1)

    assert_equivariant(outer, x, in_action=SymmetricAction(4), out_action=SymmetricAction(4, 2))
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(
            lambda t: outer(t).transpose(1, 3).reshape(3, 4, 4, 2),  # scrambles the axes
            x,
            in_action=SymmetricAction(4),
            out_action=SymmetricAction(4, 2),
            num_permutations=10,
        )


def test_cyclic_and_reflection_actions() -> None:
    from deepsets.equivariance import CyclicAction, ReflectionAction

    x = torch.randn(2, 7, 1, dtype=torch.float64)
    assert_equivariant(lambda t: t - 0.5 * torch.roll(t, 1, dims=1), x, in_action=CyclicAction(7))
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(
            lambda t: t - 0.5 * t.flip(1), x, in_action=CyclicAction(7), num_permutations=10
        )
    line = torch.linspace(-1, 1, 5, dtype=torch.float64).view(5, 1)  # (B, 1): one coordinate
    assert_equivariant(lambda t: t**3 - t, line, in_action=ReflectionAction())  # odd
    assert_invariant(lambda t: t**2, line, in_action=ReflectionAction(), num_permutations=4)
    with pytest.raises(AssertionError, match="not invariant"):
        assert_invariant(lambda t: t**2 + t, line, in_action=ReflectionAction(), num_permutations=8)


def test_action_checks_reject_inconsistent_requests() -> None:
    from deepsets.equivariance import ReflectionAction, SymmetricAction

    x = torch.randn(2, 4, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="out_action needs in_action"):
        assert_equivariant(lambda t: t, x, out_action=SymmetricAction(4))
    with pytest.raises(ValueError, match="same group"):
        assert_equivariant(
            lambda t: t, x, in_action=SymmetricAction(4), out_action=SymmetricAction(5)
        )
    with pytest.raises(ValueError, match="mask can only be moved by a permutation action"):
        assert_invariant(
            lambda t, mask: t.sum(1),
            x[:, :1],
            torch.ones(2, 1, dtype=torch.bool),
            in_action=ReflectionAction(),
        )


def test_action_trials_are_reproducible_with_a_generator() -> None:
    from deepsets.equivariance import SymmetricAction

    x = torch.randn(2, 5, 5, 1, dtype=torch.float64)
    messages = []
    for _ in range(2):
        with pytest.raises(AssertionError) as info:
            assert_equivariant(
                lambda t: t + t[:, :1, :1],
                x,
                in_action=SymmetricAction(5, 2),
                generator=torch.Generator().manual_seed(3),
            )
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_saved_tensor_bytes_counts_each_storage_once() -> None:
    x = torch.randn(100, requires_grad=True)  # 400 bytes
    y = torch.randn(50, requires_grad=True)  # 200 bytes
    assert saved_tensor_bytes(lambda: x * x) == 400  # mul saves x twice: one storage
    assert saved_tensor_bytes(lambda: x[:50] * y) == 600  # a view counts its whole storage
    assert saved_tensor_bytes(lambda: x + x) == 0  # add saves nothing for backward
    assert x.grad is not None and y.grad is not None  # the graph was run and freed


# ============================================================ equivariance_error


def _broken_layer() -> nn.Module:
    """A PermutationEquivariantLayer plus a term that depends on the position: not equivariant."""
    layer = PermutationEquivariantLayer(D_IN, 4, pool_type="sum").double()

    class Broken(nn.Module):
        def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
            ramp = torch.arange(x.shape[1], dtype=x.dtype).view(1, -1, 1)
            return layer(x, mask) + ramp

    return Broken()


def test_equivariance_error_is_zero_for_a_correct_layer_and_large_for_a_broken_one() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 7, D_IN, dtype=torch.float64)
    good = PermutationEquivariantLayer(D_IN, 4, pool_type="sum").double()
    assert equivariance_error(good, x) < 1e-12
    error = equivariance_error(_broken_layer(), x, generator=torch.Generator().manual_seed(0))
    # the ramp moves by at least 1 wherever a permutation moves an element
    assert error >= 1.0
    with pytest.raises(AssertionError, match="max abs deviation"):
        assert_equivariant(_broken_layer(), x, generator=torch.Generator().manual_seed(0))


def test_invariance_error_measures_the_model_and_counts_nan_against_a_number_as_inf() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, D_IN, dtype=torch.float64)
    model = DeepSetsInvariant(D_IN, [6], [5], 2).double().eval()
    assert invariance_error(model, x) < 1e-12
    assert equivariance_error(model, x, invariant=True) == invariance_error(model, x)

    def first_element(x: Tensor) -> Tensor:  # reads position 0: not invariant
        return x[:, 0]

    gap = invariance_error(first_element, x, generator=torch.Generator().manual_seed(0))
    perms = torch.Generator().manual_seed(0)
    expected = 0.0
    for _ in range(3):  # the same permutations, by definition
        perm = torch.rand(3, 5, generator=perms).argsort(dim=1)
        moved = torch.gather(x, 1, perm.unsqueeze(-1).expand_as(x))
        expected = max(expected, float((moved[:, 0] - x[:, 0]).abs().max()))
    assert gap == pytest.approx(expected)

    def nan_everywhere(x: Tensor) -> Tensor:  # NaN on both sides: no deviation
        return x.sum(1) * float("nan")

    def nan_by_order(x: Tensor) -> Tensor:  # NaN where the first element beats the second
        return torch.where(x[:, 0] > x[:, 1], float("nan"), 0.0)

    assert invariance_error(nan_everywhere, x) == 0.0
    assert invariance_error(nan_by_order, x, num_permutations=10) == float("inf")
    assert equivariance_error(lambda x: x, x, num_permutations=0) == 0.0
