"""One pooling rule on every path, for NaN and ±inf values and their gradients.

The reference pools each set on its own with plain ``torch.sum`` / ``torch.mean`` /
``torch.amax`` over its real elements (an empty set gives 0): ``amax`` splits a max's
gradient between ties and gives every element a NaN gradient when the max is NaN. Every
input form must give the same values and the same gradients, NaN where NaN, in the same
places: padded with a bool mask, padded with weights, packed by offsets, packed by a
shuffled index, a jagged nested tensor, a ``PoolingState`` fed in one or several chunks,
and the model-level ``backward_chunks`` against ``model(x).backward()``.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from deepsets import DeepSetsInvariant, pad_sets
from deepsets.functional import masked_pool, segment_pool
from deepsets.streaming import PoolingState

POOLS = ["sum", "mean", "max"]
WIDTH = 2
SPECIAL = [math.nan, math.inf, -math.inf]
#: Small integers make ties likely; NaN and ±inf are drawn often.
ELEMENT = st.one_of(st.sampled_from(SPECIAL), st.integers(-2, 2).map(float))
SETS = st.lists(
    st.lists(st.lists(ELEMENT, min_size=WIDTH, max_size=WIDTH), min_size=0, max_size=4),
    min_size=1,
    max_size=4,
)


def reference(sets: list[Tensor], pool: str, upstream: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Value and per-set input gradients, one set at a time with plain torch ops."""
    leaves = [s.clone().requires_grad_() for s in sets]
    rows = []
    for s in leaves:
        if s.shape[0] == 0:
            rows.append(s.sum(0))  # zeros, connected
        elif pool == "sum":
            rows.append(s.sum(0))
        elif pool == "mean":
            rows.append(s.mean(0))
        else:
            rows.append(s.amax(0))
    out = torch.stack(rows)
    (out * upstream).sum().backward()
    return out.detach(), [
        leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves
    ]


def _same(actual: Tensor, expected: Tensor, what: str) -> None:
    torch.testing.assert_close(actual, expected, equal_nan=True, msg=lambda m: f"{what}: {m}")


def _padded(sets: list[Tensor]) -> tuple[Tensor, Tensor]:
    x, mask = pad_sets(sets)
    # garbage in the padding: it must never show up in a value or a gradient
    return x.masked_fill(~mask.unsqueeze(-1), math.nan), mask


def _grads_padded(x: Tensor, mask: Tensor, sizes: list[int]) -> list[Tensor]:
    assert x.grad is not None
    return [x.grad[b, :n] for b, n in enumerate(sizes)]


def _grads_rows(grad: Tensor, sizes: list[int]) -> list[Tensor]:
    return list(grad.split(sizes))


def all_paths(
    sets: list[Tensor], pool: str, upstream: Tensor
) -> dict[str, tuple[Tensor, list[Tensor]]]:
    """Value and per-set input gradients from every input form of the library."""
    sizes = [s.shape[0] for s in sets]
    results = {}

    def run(fn):  # type: ignore[no-untyped-def]
        out, grads = fn()
        return out.detach(), grads

    def padded(weights: bool) -> tuple[Tensor, list[Tensor]]:
        x, mask = _padded(sets)
        x.requires_grad_()
        m = mask.to(x.dtype) if weights else mask
        out = masked_pool(x, pool, m)
        (out * upstream).sum().backward()
        return out, _grads_padded(x, mask, sizes)

    results["padded-bool"] = run(lambda: padded(False))
    results["padded-weights"] = run(lambda: padded(True))

    values = torch.cat(sets)
    offsets = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()])

    def by_offsets() -> tuple[Tensor, list[Tensor]]:
        v = values.clone().requires_grad_()
        out = segment_pool(v, pool, offsets=offsets)
        (out * upstream).sum().backward()
        return out, _grads_rows(v.grad, sizes)  # type: ignore[arg-type]

    def by_index() -> tuple[Tensor, list[Tensor]]:
        index = torch.repeat_interleave(torch.arange(len(sets)), torch.tensor(sizes))
        order = torch.randperm(values.shape[0], generator=torch.Generator().manual_seed(0))
        v = values[order].clone().requires_grad_()
        out = segment_pool(v, pool, index=index[order], num_sets=len(sets))
        (out * upstream).sum().backward()
        grad = torch.empty_like(values)
        grad[order] = v.grad  # type: ignore[index]
        return out, _grads_rows(grad, sizes)

    def jagged() -> tuple[Tensor, list[Tensor]]:
        v = values.clone().requires_grad_()
        nested = torch.nested.nested_tensor_from_jagged(v, offsets)
        out = masked_pool(nested, pool)
        (out * upstream).sum().backward()
        return out, _grads_rows(v.grad, sizes)  # type: ignore[arg-type]

    def streamed(chunk: int) -> tuple[Tensor, list[Tensor]]:
        v = values.clone().requires_grad_()
        index = torch.repeat_interleave(torch.arange(len(sets)), torch.tensor(sizes))
        state = PoolingState(pool, num_sets=len(sets))
        for start in range(0, max(v.shape[0], 1), chunk):
            state.update(v[start : start + chunk], index=index[start : start + chunk])
        out = state.result()
        (out * upstream).sum().backward()
        grad = v.grad if v.grad is not None else torch.zeros_like(v)
        return out, _grads_rows(grad, sizes)

    results["packed-offsets"] = run(by_offsets)
    results["packed-index"] = run(by_index)
    results["jagged"] = run(jagged)
    results["pooling-state"] = run(lambda: streamed(10**6))
    return results


@pytest.mark.parametrize("pool", POOLS)
@given(data=SETS)
def test_every_path_follows_the_reference_on_nan_and_inf(pool: str, data: list) -> None:
    sets = [torch.tensor(s, dtype=torch.float64).reshape(-1, WIDTH) for s in data]
    upstream = torch.linspace(0.5, 2.0, len(sets) * WIDTH, dtype=torch.float64).view(-1, WIDTH)
    expected, expected_grads = reference(sets, pool, upstream)
    for name, (out, grads) in all_paths(sets, pool, upstream).items():
        _same(out, expected, f"{name} value")
        for b, (grad, want) in enumerate(zip(grads, expected_grads, strict=True)):
            _same(grad, want, f"{name} gradient of set {b}")


@pytest.mark.parametrize("path", ["packed-offsets", "packed-index", "jagged"])
def test_a_nan_in_a_set_reaches_the_gradient_of_packed_max(path: str) -> None:
    """The defect this file guards: packed max once gave a zero gradient to a NaN set."""
    sets = [torch.tensor([[1.0], [math.nan], [3.0]]), torch.tensor([[2.0], [5.0]])]
    _, grads = all_paths(sets, "max", torch.ones(2, 1))[path]
    assert bool(grads[0].isnan().all()), grads[0]
    torch.testing.assert_close(grads[1], torch.tensor([[0.0], [1.0]]))


def test_all_minus_inf_set_does_not_share_its_gradient_with_padding() -> None:
    sets = [torch.tensor([[-math.inf], [-math.inf]]), torch.tensor([[0.0], [1.0], [2.0], [3.0]])]
    for name, (_, grads) in all_paths(sets, "max", torch.ones(2, 1)).items():
        torch.testing.assert_close(grads[0], torch.full((2, 1), 0.5), msg=name)


@pytest.mark.parametrize("pool", POOLS)
def test_streaming_state_merges_a_nan_chunk_into_every_gradient(pool: str) -> None:
    values = torch.tensor([[1.0], [4.0], [math.nan], [2.0]], requires_grad=True)
    state = PoolingState(pool)
    for rows in values.split(2):
        state.update(rows)
    state.result().sum().backward()
    expected = reference([values.detach()], pool, torch.ones(1, 1))[1][0]
    _same(values.grad, expected, "chunked PoolingState")  # type: ignore[arg-type]
    if pool == "max":
        assert bool(values.grad.isnan().all())  # type: ignore[union-attr]


def _phi_grads(model: DeepSetsInvariant) -> list[Tensor]:
    return [p.grad.clone() for p in model.phi.parameters()]  # type: ignore[union-attr]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("special", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("weighted", [False, True])
def test_backward_chunks_agree_with_the_whole_set(
    pool: str, special: float, weighted: bool
) -> None:
    torch.manual_seed(0)
    model = DeepSetsInvariant(2, [3], [4], 1, pool_type=pool).double()
    model.phi[0].bias.data.zero_()  # type: ignore[union-attr]
    rows = torch.randn(9, 2, dtype=torch.float64)
    rows[4, 0] = special  # φ(row) is non-finite (or exactly ±inf after Linear+ReLU)
    weights = torch.tensor([1.0, 0, 2, 1, 1, 0, 1, 1, 1], dtype=torch.float64)
    weights = weights if weighted else None

    model.zero_grad()
    model(rows.unsqueeze(0), None if weights is None else weights.unsqueeze(0)).sum().backward()
    expected = _phi_grads(model)

    model.zero_grad()
    if weights is None:
        chunks: list = list(rows.split(4))
    else:
        chunks = list(zip(rows.split(4), weights.split(4), strict=True))
    model.backward_chunks(lambda: iter(chunks), lambda out: out.sum())
    for got, want in zip(_phi_grads(model), expected, strict=True):
        _same(got, want, f"backward_chunks {pool} {special}")
