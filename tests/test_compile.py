"""``torch.compile(fullgraph=True)``: no graph breaks, one graph for every set size, same answers.

Most tests use the ``"eager"`` backend: it runs Dynamo's full tracing (where graph breaks
and recompiles happen) without Inductor's code generation, which takes tens of seconds per
graph on a CPU. ``"aot_eager"`` adds AOTAutograd (the backward graph); one test builds a
real Inductor kernel. Packed (jagged nested) input and ``segment_pool`` are compiled too.
Sizes 0 and 1 are avoided after the warm-up: Dynamo specialises
them by design (its 0/1 specialisation), every size ≥ 2 shares one dynamic graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch._dynamo
from torch import Tensor, nn
from torch._dynamo.utils import counters

from deepsets import (
    DeepSetsConditional,
    DeepSetsEquivariant,
    DeepSetsInvariant,
    PermutationEquivariantLayer,
    equivariance,
    ragged,
)
from deepsets.functional import masked_pool, segment_pool

# torch's own import of torch.jit during compilation warns; nothing to act on here.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")

FEATURES = 3
CONTEXT = 4
#: (batch, set size) pairs after the warm-up call; every one differs in both dims.
SIZES = [(3, 7), (5, 2), (2, 13), (4, 30)]


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    context: bool = False


CASES: dict[str, Case] = {
    "invariant-sum": Case(lambda: DeepSetsInvariant(FEATURES, [8, 8], [6], 2)),
    "invariant-mean": Case(lambda: DeepSetsInvariant(FEATURES, [8], [6], 2, pool_type="mean")),
    "invariant-max": Case(lambda: DeepSetsInvariant(FEATURES, [8], [6], 2, pool_type="max")),
    "equivariant": Case(lambda: DeepSetsEquivariant(FEATURES, [8, 8], 2)),
    "equivariant-pooled": Case(
        lambda: DeepSetsEquivariant(FEATURES, [8], 2, pool_type="mean", final_pool="sum")
    ),
    "conditional-concat": Case(
        lambda: DeepSetsConditional(FEATURES, CONTEXT, [8], [6], 2), context=True
    ),
    "conditional-film": Case(
        lambda: DeepSetsConditional(
            FEATURES, CONTEXT, [8, 8], [6], 2, pool_type="max", fusion_type="film"
        ),
        context=True,
    ),
    "conditional-add": Case(
        lambda: DeepSetsConditional(
            FEATURES, CONTEXT, [8], [6], 2, pool_type="mean", fusion_type="add"
        ),
        context=True,
    ),
    "layer-max": Case(lambda: PermutationEquivariantLayer(FEATURES, 5)),
    "layer-sum": Case(lambda: PermutationEquivariantLayer(FEATURES, 5, pool_type="sum")),
}
MASKS = ["none", "bool", "weights"]
#: The padded matrix below; the other cases are compiled by the training and export tests.
FULLGRAPH_CASES = sorted(set(CASES) - {"invariant-mean", "layer-sum"})


def _inputs(
    case: Case, mask_kind: str, batch: int, size: int, seed: int = 0
) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    generator = torch.Generator().manual_seed(seed + 101 * batch + size)
    x = torch.randn(batch, size, FEATURES, generator=generator)
    kwargs: dict[str, Tensor] = {}
    if mask_kind != "none":
        keep = torch.rand(batch, size, generator=generator) < 0.7
        keep[0] = False  # one empty set in every batch
        if mask_kind == "bool":
            kwargs["mask"] = keep
        else:
            kwargs["mask"] = keep * torch.rand(batch, size, generator=generator) * 2
        x = x.masked_fill(~keep.unsqueeze(-1), float("nan"))  # padding must not leak
    args = (x, torch.randn(batch, CONTEXT, generator=generator)) if case.context else (x,)
    return args, kwargs


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _graph_breaks() -> dict[str, int]:
    return dict(counters["graph_break"])


def _unique_graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("name", FULLGRAPH_CASES)
def test_fullgraph_one_graph_for_all_set_sizes(name: str, mask_kind: str) -> None:
    """No graph break; after a warm-up, new batch and set sizes never recompile."""
    torch.manual_seed(0)
    case = CASES[name]
    model = case.build().eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")

    # Dynamo compiles the first shape statically and the second one dynamically
    # ("automatic dynamic shapes"); from then on every size must reuse that graph.
    with torch.no_grad():
        for batch, size in [(2, 5), (4, 9)]:
            args, kwargs = _inputs(case, mask_kind, batch, size)
            compiled(*args, **kwargs)
    assert _unique_graphs() == 2
    with torch._dynamo.config.patch(error_on_recompile=True), torch.no_grad():
        for batch, size in SIZES:
            args, kwargs = _inputs(case, mask_kind, batch, size, seed=1)
            out = compiled(*args, **kwargs)
            expected = model(*args, **kwargs)
            assert bool(torch.isfinite(out).all())
            torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    assert _unique_graphs() == 2
    assert _graph_breaks() == {}


@pytest.mark.parametrize("name", ["invariant-max", "layer-sum", "conditional-film"])
def test_dynamic_true_compiles_once(name: str) -> None:
    """With ``dynamic=True`` the very first graph already serves every size."""
    case = CASES[name]
    model = case.build().eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager", dynamic=True)
    with torch._dynamo.config.patch(error_on_recompile=True), torch.no_grad():
        for batch, size in [(2, 5), *SIZES]:
            args, kwargs = _inputs(case, "bool", batch, size)
            torch.testing.assert_close(compiled(*args, **kwargs), model(*args, **kwargs))
    assert _unique_graphs() == 1
    assert _graph_breaks() == {}


@pytest.mark.parametrize("name", ["invariant-mean", "equivariant-pooled", "conditional-add"])
def test_training_step_compiles_forward_and_backward(name: str) -> None:
    """AOTAutograd traces the backward too; gradients match eager, padding gets none."""
    torch.manual_seed(0)
    case = CASES[name]
    model = case.build().train()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager", dynamic=True)
    for batch, size in [(2, 5), (3, 11)]:
        args, kwargs = _inputs(case, "weights", batch, size)
        x = args[0].requires_grad_(True)
        grads = []
        for fn in (compiled, model):
            model.zero_grad(set_to_none=True)
            x.grad = None
            fn(*args, **kwargs).square().sum().backward()
            assert x.grad is not None
            grads.append([x.grad.clone(), *(p.grad.clone() for p in model.parameters())])
        for got, expected in zip(*grads, strict=True):
            assert bool(torch.isfinite(got).all())
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        inactive = kwargs["mask"] == 0
        assert bool((grads[0][0][inactive] == 0).all())
    assert _unique_graphs() == 1
    assert _graph_breaks() == {}


def test_inductor_forward_and_backward() -> None:
    """One model through the default backend (real generated kernels), masks included."""
    torch.manual_seed(0)
    case = CASES["invariant-max"]
    model = case.build()
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for batch, size in [(4, 6), (3, 17)]:
        args, kwargs = _inputs(case, "bool", batch, size)
        x = args[0].requires_grad_(True)
        out = compiled(*args, **kwargs)
        torch.testing.assert_close(out, model(*args, **kwargs), atol=1e-5, rtol=1e-5)
        (grad,) = torch.autograd.grad(out.sum(), x)
        (expected,) = torch.autograd.grad(model(*args, **kwargs).sum(), x)
        torch.testing.assert_close(grad, expected, atol=1e-5, rtol=1e-5)
    assert _graph_breaks() == {}


@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_masked_pool_compiles(pool: str) -> None:
    def pool_fn(x: Tensor, mask: Tensor) -> Tensor:
        return masked_pool(x, pool, mask)

    compiled = torch.compile(pool_fn, fullgraph=True, backend="eager", dynamic=True)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for batch, size in SIZES:
            x = torch.randn(batch, size, 4)
            mask = torch.rand(batch, size)
            mask[0] = 0  # an empty set pools to 0
            torch.testing.assert_close(compiled(x, mask), masked_pool(x, pool, mask))
    assert _graph_breaks() == {}


def test_bad_mask_weights_fail_inside_the_compiled_graph() -> None:
    """The data-dependent mask check is an in-graph assertion, not a graph break."""
    model = CASES["invariant-sum"].build()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(2, 4, FEATURES)
    compiled(x, mask=torch.rand(2, 4))
    for bad in (-1.0, float("nan"), float("inf")):
        weights = torch.rand(2, 4)
        weights[1, 2] = bad
        with pytest.raises(RuntimeError, match="mask weights must be finite and non-negative"):
            compiled(x, mask=weights)
    assert _graph_breaks() == {}


def test_wrong_input_still_names_the_argument_when_compiled() -> None:
    """Without ``fullgraph`` the error path graph-breaks and the usual ``ValueError`` surfaces;
    with ``fullgraph=True`` Dynamo refuses the raise and quotes the same message."""
    model = CASES["invariant-sum"].build()
    x = torch.randn(2, 4, FEATURES + 1)
    with pytest.raises(ValueError, match=r"x must have 3 features"):
        torch.compile(model, backend="eager")(x)
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported, match=r"x must have 3 features"):
        torch.compile(model, backend="eager", fullgraph=True)(x)


def test_autocast_bf16_compiles_without_breaks() -> None:
    case = CASES["conditional-film"]
    model = case.build().eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager", dynamic=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        for batch, size in [(2, 5), (3, 9)]:
            args, kwargs = _inputs(case, "weights", batch, size)
            out = compiled(*args, **kwargs)
            assert out.dtype == torch.bfloat16
            torch.testing.assert_close(out, model(*args, **kwargs))
    assert _unique_graphs() == 1
    assert _graph_breaks() == {}


# -------------------------------------------------------------------------- packed input

PACKED_CASES = [
    "conditional-add",
    "conditional-film",
    "equivariant",
    "equivariant-pooled",
    "invariant-max",
    "invariant-sum",
    "layer-max",
]
#: Set sizes of the packed batches after the warm-up: new batch sizes and totals each time.
PACKED_SIZES = [[6, 2, 3, 8], [5, 5, 9], [2, 3, 4, 5, 6, 7], [9, 0, 4]]


def _packed(
    case: Case, sizes: list[int], weighted: bool, seed: int = 0
) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    generator = torch.Generator().manual_seed(seed + sum(sizes))
    sets = [torch.randn(n, FEATURES, generator=generator) for n in sizes]
    kwargs: dict[str, Tensor] = {}
    if weighted:
        weights = [
            torch.rand(n, generator=generator) * (torch.rand(n, generator=generator) < 0.8)
            for n in sizes
        ]
        sets = [
            s.masked_fill((w == 0).unsqueeze(-1), float("nan"))
            for s, w in zip(sets, weights, strict=True)
        ]
        x, kwargs["mask"] = ragged.pack_sets(sets, weights)
    else:
        x = ragged.pack_sets(sets)
    context = torch.randn(len(sizes), CONTEXT, generator=generator)
    return ((x, context) if case.context else (x,)), kwargs


def _flat(t: Tensor) -> Tensor:
    return t.values() if t.is_nested else t


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weights"])
@pytest.mark.parametrize("name", PACKED_CASES)
def test_packed_input_fullgraph_without_recompiles(name: str, weighted: bool) -> None:
    """Jagged nested input: no graph break, and new set sizes reuse the dynamic graph."""
    torch.manual_seed(0)
    case = CASES[name]
    model = case.build().eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        for sizes in ([3, 5], [2, 7, 4]):  # static, then dynamic
            args, kwargs = _packed(case, sizes, weighted)
            compiled(*args, **kwargs)
        with torch._dynamo.config.patch(error_on_recompile=True):
            for sizes in PACKED_SIZES:
                args, kwargs = _packed(case, sizes, weighted, seed=1)
                out, expected = compiled(*args, **kwargs), model(*args, **kwargs)
                assert out.is_nested == expected.is_nested
                assert bool(torch.isfinite(_flat(out)).all())
                torch.testing.assert_close(_flat(out), _flat(expected), atol=1e-6, rtol=1e-5)
    assert _unique_graphs() == 2
    assert _graph_breaks() == {}


@pytest.mark.parametrize("form", ["offsets", "index"])
@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_segment_pool_compiles_without_recompiles(pool: str, form: str) -> None:
    def pool_fn(values: Tensor, split: Tensor, num_sets: int) -> Tensor:
        if form == "offsets":
            return segment_pool(values, pool, offsets=split)
        return segment_pool(values, pool, index=split, num_sets=num_sets)

    def inputs(sizes: list[int]) -> tuple[Tensor, Tensor, int]:
        counts = torch.tensor(sizes)
        values = torch.randn(int(counts.sum()), 4)
        if form == "offsets":
            return values, torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]), 0
        return values, torch.repeat_interleave(torch.arange(len(sizes)), counts), len(sizes)

    compiled = torch.compile(pool_fn, fullgraph=True, backend="eager")
    for sizes in ([3, 5], [2, 7, 4]):
        compiled(*inputs(sizes))
    with torch._dynamo.config.patch(error_on_recompile=True):
        for sizes in PACKED_SIZES:
            args = inputs(sizes)
            torch.testing.assert_close(compiled(*args), pool_fn(*args))
    assert _graph_breaks() == {}


# ------------------------------------------------------------------------ equivariance


def _equivariance_cases() -> dict[str, tuple[Callable[[], nn.Module], Callable[..., Any]]]:
    """``name -> (build, inputs(batch, n, generator))`` for every equivariance layer."""
    action = equivariance.SymmetricAction(6)
    cases: dict[str, tuple[Callable[[], nn.Module], Callable[..., Any]]] = {
        "equivariant-linear": (
            lambda: equivariance.EquivariantLinear(action, action, 2, 3),
            lambda batch, n, g: ((torch.randn(batch, 6, 2, generator=g),), {}),
        ),
        "exchangeable": (
            lambda: equivariance.ExchangeableLayer(2, 3),
            lambda batch, n, g: ((torch.randn(batch, n, n + 2, 2, generator=g),), {}),
        ),
        "exchangeable-masked": (
            lambda: equivariance.ExchangeableLayer(2, 3, pool_type="sum"),
            lambda batch, n, g: (
                (torch.randn(batch, n, n + 2, 2, generator=g),),
                {"mask": torch.rand(batch, n, n + 2, generator=g) < 0.6},
            ),
        ),
        "cyclic": (
            lambda: equivariance.CyclicConvLayer(8, 2, 3),
            lambda batch, n, g: ((torch.randn(batch, 8, 2, generator=g),), {}),
        ),
    }
    for pool in ("sum", "mean"):
        cases[f"second-order-{pool}"] = (
            lambda pool=pool: equivariance.SecondOrderEquivariantLayer(2, 3, pool_type=pool),
            lambda batch, n, g: ((torch.randn(batch, n, n, 2, generator=g),), {}),
        )
    return cases


EQUIVARIANCE_NAMES = [
    "cyclic",
    "equivariant-linear",
    "exchangeable",
    "exchangeable-masked",
    "second-order-mean",
    "second-order-sum",
]


@pytest.mark.parametrize("name", EQUIVARIANCE_NAMES)
def test_equivariance_layers_fullgraph(name: str) -> None:
    build, make = _equivariance_cases()[name]
    torch.manual_seed(0)
    layer = build()
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for batch, n in [(2, 3), (3, 4)]:  # static, then dynamic
            args, kwargs = make(batch, n, generator)
            compiled(*args, **kwargs)
    with torch._dynamo.config.patch(error_on_recompile=True), torch.no_grad():
        for batch, n in [(4, 5), (2, 7), (5, 9)]:
            args, kwargs = make(batch, n, generator)
            out = compiled(*args, **kwargs)
            torch.testing.assert_close(out, layer(*args, **kwargs), atol=1e-5, rtol=1e-5)
    assert _unique_graphs() <= 2
    assert _graph_breaks() == {}
