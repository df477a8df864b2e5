"""The fast reads of jagged nested tensors and the per-offsets layout cache (deepsets._jagged)."""

from __future__ import annotations

import gc

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from deepsets import DeepSetsEquivariant, DeepSetsInvariant, pack_sets
from deepsets._jagged import (
    _LAYOUTS,
    is_jagged,
    jagged_values,
    offsets_to_index,
    segment_layout,
)


def _packed(sizes: list[int], dim: int = 3) -> torch.Tensor:
    return pack_sets([torch.randn(n, dim) for n in sizes])


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_is_jagged_tells_the_layouts_apart() -> None:
    assert is_jagged(_packed([2, 3]))
    assert not is_jagged(torch.randn(2, 3, 4))
    strided = torch.nested.nested_tensor([torch.randn(2, 4), torch.randn(3, 4)])
    assert strided.is_nested and not is_jagged(strided)


def test_jagged_values_are_the_rows() -> None:
    x = _packed([2, 0, 4])
    rows = jagged_values(x)
    assert torch.equal(rows, x.values())
    assert not rows.requires_grad


def test_gradient_reaches_a_nested_input_that_requires_it() -> None:
    """A leaf nested tensor with requires_grad: the public values() view carries the grad."""
    x = _packed([2, 3]).requires_grad_()
    model = DeepSetsInvariant(3, [4], [4], 1)
    model(x).sum().backward()
    assert x.grad is not None
    rows = x.values().detach().clone().requires_grad_()
    per_set = [rows[:2], rows[2:]]
    sum(model(s.unsqueeze(0)).sum() for s in per_set).backward()
    torch.testing.assert_close(x.grad.values(), rows.grad)


def test_gradient_reaches_the_buffer_a_nested_input_was_built_from() -> None:
    torch.manual_seed(0)
    values = torch.randn(5, 3, requires_grad=True)
    x = torch.nested.nested_tensor_from_jagged(values, torch.tensor([0, 2, 5]))
    model = DeepSetsInvariant(3, [4], [4], 1, pool_type="mean")
    model(x).sum().backward()
    rows = values.detach().clone().requires_grad_()
    sum(model(s.unsqueeze(0)).sum() for s in (rows[:2], rows[2:])).backward()
    assert values.grad is not None
    torch.testing.assert_close(values.grad, rows.grad)


def test_a_buffer_wrapped_under_no_grad_behaves_as_values_does() -> None:
    values = torch.randn(5, 3, requires_grad=True)
    with torch.no_grad():
        x = torch.nested.nested_tensor_from_jagged(values, torch.tensor([0, 2, 5]))
    public, fast = x.values(), jagged_values(x)
    assert fast.requires_grad == public.requires_grad
    assert (fast.grad_fn is None) == (public.grad_fn is None)
    torch.testing.assert_close(fast, public)


@given(st.lists(st.integers(0, 30), min_size=0, max_size=12))
def test_segment_layout_matches_the_offsets(sizes: list[int]) -> None:
    offsets = torch.tensor([0, *sizes]).cumsum(0)
    layout = segment_layout(offsets, sum(sizes))
    expected = torch.repeat_interleave(
        torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long)
    )
    assert torch.equal(layout.set_index, expected)
    assert torch.equal(
        layout.divisor.squeeze(-1), torch.tensor(sizes, dtype=torch.long).clamp(min=1)
    )
    assert layout.divisor.shape == (len(sizes), 1)
    assert segment_layout(offsets, sum(sizes)) is layout  # cached
    assert torch.equal(offsets_to_index(offsets.to(torch.int32), sum(sizes)), expected)


def test_layout_is_rebuilt_when_the_offsets_change_in_place() -> None:
    offsets = torch.tensor([0, 2, 5])
    first = segment_layout(offsets, 5)
    assert first.set_index.tolist() == [0, 0, 1, 1, 1]
    offsets[1] = 4
    second = segment_layout(offsets, 5)
    assert second.set_index.tolist() == [0, 0, 0, 0, 1]
    assert second.divisor.squeeze(-1).tolist() == [4, 1]


def test_layout_entries_die_with_their_offsets() -> None:
    offsets = torch.tensor([0, 3, 3, 7])
    segment_layout(offsets, 7)
    key = id(offsets)
    assert key in _LAYOUTS
    del offsets
    gc.collect()
    assert key not in _LAYOUTS


def test_inference_mode_then_training_on_the_same_batch() -> None:
    """An index built under inference mode must not be cached and then saved for backward."""
    x = _packed([3, 1, 4])
    model = DeepSetsEquivariant(3, [4], 2, final_pool="mean")
    with torch.inference_mode():
        expected = model(x)
    out = model(x)
    out.sum().backward()  # would raise "Inference tensors cannot be saved for backward"
    torch.testing.assert_close(out.detach(), expected)


def test_one_batch_twice_gives_the_same_result_and_grads() -> None:
    x = _packed([2, 0, 6, 1])
    for pool in ("sum", "mean", "max"):
        model = DeepSetsInvariant(3, [8], [4], 2, pool_type=pool)
        first = model(x)
        grads_first = torch.autograd.grad(first.sum(), list(model.parameters()))
        second = model(x)
        grads_second = torch.autograd.grad(second.sum(), list(model.parameters()))
        assert torch.equal(first, second)
        for a, b in zip(grads_first, grads_second, strict=True):
            assert torch.equal(a, b)
