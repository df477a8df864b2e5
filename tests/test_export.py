"""``torch.export`` with dynamic batch and set-size dimensions, and ONNX through onnxruntime.

Each model is exported once, from one example size, and must then agree with eager mode at
other batch and set sizes — with bool and weight masks, NaN/inf in the padding and a set
with no element at all. The ONNX tests need the ``export`` extra (``onnx``, ``onnxscript``,
``onnxruntime``) and skip cleanly without it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.export import Dim

from deepsets import (
    DeepSetsConditional,
    DeepSetsEquivariant,
    DeepSetsInvariant,
    PermutationEquivariantLayer,
    equivariance,
)

FEATURES = 3
CONTEXT = 4
#: (batch, set size) pairs checked after export from (4, 6): smaller, larger, size 1.
SIZES = [(1, 1), (2, 3), (5, 17), (16, 64)]
#: The issue's bound on |onnxruntime - eager|.
ONNX_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    mask: str  # "none", "bool" or "weights"
    context: bool = False


CASES: dict[str, Case] = {
    "invariant-sum-weights": Case(lambda: DeepSetsInvariant(FEATURES, [16, 16], [8], 2), "weights"),
    "invariant-max-bool": Case(
        lambda: DeepSetsInvariant(FEATURES, [16], [8], 2, pool_type="max"), "bool"
    ),
    "invariant-mean-none": Case(
        lambda: DeepSetsInvariant(FEATURES, [16], [8], 2, pool_type="mean"), "none"
    ),
    "equivariant-max-bool": Case(lambda: DeepSetsEquivariant(FEATURES, [16, 16], 2), "bool"),
    "equivariant-pooled-weights": Case(
        lambda: DeepSetsEquivariant(FEATURES, [16], 2, pool_type="mean", final_pool="max"),
        "weights",
    ),
    "conditional-film-bool": Case(
        lambda: DeepSetsConditional(FEATURES, CONTEXT, [16, 16], [8], 2, fusion_type="film"),
        "bool",
        context=True,
    ),
    "conditional-add-weights": Case(
        lambda: DeepSetsConditional(
            FEATURES, CONTEXT, [16], [8], 2, pool_type="max", fusion_type="add"
        ),
        "weights",
        context=True,
    ),
    "conditional-concat-none": Case(
        lambda: DeepSetsConditional(FEATURES, CONTEXT, [16], [8], 2, pool_type="mean"),
        "none",
        context=True,
    ),
    "layer-sum-weights": Case(
        lambda: PermutationEquivariantLayer(FEATURES, 5, pool_type="sum"), "weights"
    ),
    "layer-max-none": Case(lambda: PermutationEquivariantLayer(FEATURES, 5), "none"),
}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return CASES[name].build().eval()


def _inputs(case: Case, batch: int, size: int, seed: int = 0) -> dict[str, Tensor]:
    """Keyword inputs; padding holds NaN / ±inf, and the first set is empty."""
    generator = torch.Generator().manual_seed(seed + 1000 * batch + size)
    x = torch.randn(batch, size, FEATURES, generator=generator)
    inputs = {"x": x}
    if case.context:
        inputs["context"] = torch.randn(batch, CONTEXT, generator=generator)
    if case.mask != "none":
        keep = torch.rand(batch, size, generator=generator) < 0.7
        keep[0] = False
        junk = torch.tensor([float("nan"), float("inf"), -float("inf")])
        fill = junk[torch.randint(0, 3, (batch, size, 1), generator=generator)]
        inputs["x"] = torch.where(keep.unsqueeze(-1), x, fill)
        weights = keep * (0.1 + torch.rand(batch, size, generator=generator))
        inputs["mask"] = keep if case.mask == "bool" else weights
    return inputs


def _dynamic_shapes(case: Case) -> dict[str, dict[int, Dim] | None]:
    batch, size = Dim("batch", min=1), Dim("set_size", min=1)
    shapes: dict[str, dict[int, Dim] | None] = {"x": {0: batch, 1: size}}
    if case.context:
        shapes["context"] = {0: batch}
    if case.mask != "none":
        shapes["mask"] = {0: batch, 1: size}
    return shapes


def _eager(model: nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    with torch.no_grad():
        return model(**inputs)


# ----------------------------------------------------------------------------- torch.export


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_export_dynamic_batch_and_set_size(name: str) -> None:
    case, model = CASES[name], _model(name)
    example = _inputs(case, 4, 6)
    program = torch.export.export(
        model, (), example, dynamic_shapes=_dynamic_shapes(case), strict=False
    )
    # both dimensions stayed symbolic: no size was burnt into the graph
    placeholder = next(n for n in program.graph.nodes if n.name == "x")
    batch, size, width = placeholder.meta["val"].shape
    assert isinstance(batch, torch.SymInt)
    assert isinstance(size, torch.SymInt)
    assert width == FEATURES
    exported = program.module()
    for b, m in SIZES:
        inputs = _inputs(case, b, m, seed=1)
        out = exported(**inputs)
        assert bool(torch.isfinite(out).all())
        torch.testing.assert_close(out, _eager(model, inputs), atol=1e-6, rtol=1e-5)


def test_torch_export_keeps_the_mask_weight_assertion() -> None:
    case = CASES["invariant-sum-weights"]
    program = torch.export.export(
        _model("invariant-sum-weights"),
        (),
        _inputs(case, 4, 6),
        dynamic_shapes=_dynamic_shapes(case),
        strict=False,
    )
    inputs = _inputs(case, 3, 5)
    inputs["mask"][1, 2] = -0.5
    with pytest.raises(RuntimeError, match="mask weights must be finite and non-negative"):
        program.module()(**inputs)
    inputs["x"] = inputs["x"][..., :2]
    with pytest.raises((AssertionError, RuntimeError), match=r"x\.size"):
        program.module()(**inputs)  # the input spec refuses a wrong feature width


def test_torch_export_equivariance_layers() -> None:
    torch.manual_seed(0)
    layer = equivariance.ExchangeableLayer(2, 3).eval()
    rows, cols, batch = Dim("rows", min=2), Dim("cols", min=2), Dim("batch", min=1)
    x, mask = torch.randn(2, 4, 5, 2), torch.rand(2, 4, 5) < 0.7
    program = torch.export.export(
        layer,
        (x,),
        {"mask": mask},
        dynamic_shapes={"x": {0: batch, 1: rows, 2: cols}, "mask": {0: batch, 1: rows, 2: cols}},
        strict=False,
    )
    for shape in [(1, 3, 7), (5, 6, 2)]:
        x, mask = torch.randn(*shape, 2), torch.rand(*shape) < 0.7
        torch.testing.assert_close(program.module()(x, mask=mask), layer(x, mask=mask))


# ------------------------------------------------------------------------------------ ONNX

ONNX_CASES = [
    "conditional-add-weights",
    "conditional-film-bool",
    "equivariant-max-bool",
    "equivariant-pooled-weights",
    "invariant-max-bool",
    "invariant-mean-none",
    "invariant-sum-weights",
    "layer-sum-weights",
]


def _onnx_export(model: nn.Module, case: Case, path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    example = _inputs(case, 4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (),
            kwargs=example,
            dynamic_shapes=_dynamic_shapes(case),
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    program.save(str(path))


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_matches_eager(name: str, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    case, model = CASES[name], _model(name)
    path = tmp_path / f"{name}.onnx"
    _onnx_export(model, case, path)

    graph = onnx.load(str(path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == list(_inputs(case, 1, 1))
    for batch, size in SIZES:
        inputs = _inputs(case, batch, size, seed=2)
        (out,) = session.run(None, {k: v.numpy() for k, v in inputs.items()})
        expected = _eager(model, inputs)
        assert out.shape == tuple(expected.shape)
        difference = float((torch.from_numpy(out) - expected).abs().max())
        assert difference <= ONNX_TOLERANCE, (batch, size, difference)
