"""The attention models deploy like the Deep Sets models: ``torch.compile(fullgraph=True)``
(Dynamo's ``eager``/``aot_eager`` backends, as ``tests/test_compile.py``), ``torch.export``
with dynamic batch and set sizes and ONNX (padded path, NaN/inf padding, an empty set), and
``save_pretrained`` / ``from_pretrained``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torch._dynamo
from torch import Tensor, nn
from torch._dynamo.utils import counters
from torch.export import Dim

from deepsets import (
    ISAB,
    PMA,
    SAB,
    GatedAttentionPooling,
    MultiheadAttentionBlock,
    SetTransformer,
    load_pretrained,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")

D = 3
CASES: dict[str, Callable[[], nn.Module]] = {
    "set-transformer": lambda: SetTransformer(D, 2, hidden_dim=8, num_heads=2, num_inducing=4),
    "set-transformer-sab": lambda: SetTransformer(
        D, 2, hidden_dim=8, num_heads=2, num_inducing=None, num_seeds=2, layer_norm=True
    ),
    "pma": lambda: PMA(D, num_seeds=2, num_heads=1, flatten=True),
    "gated": lambda: GatedAttentionPooling(D, attention_dim=6),
    "sab": lambda: SAB(D, 4, num_heads=2),
}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return CASES[name]().eval()


def _inputs(batch: int, size: int, kind: str, seed: int = 0) -> dict[str, Tensor]:
    """Padding holds NaN/±inf and the first set is empty."""
    generator = torch.Generator().manual_seed(seed + 1000 * batch + size)
    x = torch.randn(batch, size, D, generator=generator)
    keep = torch.rand(batch, size, generator=generator) < 0.7
    keep[0] = False
    junk = torch.tensor([math.nan, math.inf, -math.inf])
    fill = junk[torch.randint(0, 3, (batch, size, 1), generator=generator)]
    weights = keep * (0.5 + torch.rand(batch, size, generator=generator))
    return {
        "x": torch.where(keep.unsqueeze(-1), x, fill),
        "mask": keep if kind == "bool" else weights,
    }


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize(
    ("name", "kind"), [*((name, "weights") for name in sorted(CASES)), ("gated", "bool")]
)
def test_fullgraph_without_recompiles(name: str, kind: str) -> None:
    model = _model(name)
    compiled = torch.compile(model, fullgraph=True, backend="eager", dynamic=True)
    with torch._dynamo.config.patch(error_on_recompile=True), torch.no_grad():
        for batch, size in [(2, 5), (3, 9), (5, 2), (2, 13)]:
            inputs = _inputs(batch, size, kind)
            out = compiled(**inputs)
            assert bool(torch.isfinite(out).all())
            torch.testing.assert_close(out, model(**inputs), atol=1e-6, rtol=1e-5)
    assert int(counters["stats"]["unique_graphs"]) == 1
    assert dict(counters["graph_break"]) == {}


def test_training_step_compiles_forward_and_backward() -> None:
    torch.manual_seed(0)
    model = SetTransformer(D, 2, hidden_dim=4, num_heads=2, num_inducing=2, num_encoder_blocks=1)
    model = model.train()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager", dynamic=True)
    for batch, size in [(2, 5), (3, 11)]:
        inputs = _inputs(batch, size, "weights")
        x = inputs["x"].requires_grad_(True)
        grads = []
        for fn in (compiled, model):
            model.zero_grad(set_to_none=True)
            x.grad = None
            fn(**inputs).square().sum().backward()
            assert x.grad is not None
            grads.append([x.grad.clone(), *(p.grad.clone() for p in model.parameters())])
        for got, expected in zip(*grads, strict=True):
            assert bool(torch.isfinite(got).all())
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        assert bool((grads[0][0][inputs["mask"] == 0] == 0).all())  # padding gets nothing
    assert dict(counters["graph_break"]) == {}


def _export(model: nn.Module) -> torch.export.ExportedProgram:
    batch, size = Dim("batch", min=1), Dim("set_size", min=1)
    shapes = {"x": {0: batch, 1: size}, "mask": {0: batch, 1: size}}
    return torch.export.export(
        model, (), _inputs(4, 6, "weights"), dynamic_shapes=shapes, strict=False
    )


@pytest.mark.parametrize("name", ["set-transformer", "gated", "pma"])
def test_torch_export_dynamic_batch_and_set_size(name: str) -> None:
    model = _model(name)
    exported = _export(model).module()
    for batch, size in [(1, 1), (2, 3), (5, 17)]:
        inputs = _inputs(batch, size, "weights", seed=1)
        with torch.no_grad():
            expected = model(**inputs)
        out = exported(**inputs)
        assert bool(torch.isfinite(out).all())
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["set-transformer", "gated"])
def test_onnx_matches_eager(name: str, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    model = _model(name)
    batch, size = Dim("batch", min=1), Dim("set_size", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (),
            kwargs=_inputs(4, 6, "weights"),
            dynamic_shapes={"x": {0: batch, 1: size}, "mask": {0: batch, 1: size}},
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    path = tmp_path / f"{name}.onnx"
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, m in [(1, 1), (2, 3), (5, 17)]:
        inputs = _inputs(b, m, "weights", seed=2)
        (out,) = session.run(None, {k: v.numpy() for k, v in inputs.items()})
        with torch.no_grad():
            expected = model(**inputs)
        assert float((torch.from_numpy(out) - expected).abs().max()) <= 1e-5


@pytest.mark.parametrize(
    "build",
    [
        *CASES.values(),
        lambda: ISAB(D, 4, num_inducing=3, num_heads=2, layer_norm=True),
        lambda: MultiheadAttentionBlock(D, 5, 4, num_heads=2),
    ],
)
def test_save_and_load_round_trip(build: Callable[[], nn.Module], tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    torch.manual_seed(0)
    model = build().eval()
    model.save_pretrained(tmp_path / "model")  # type: ignore[operator]
    again = type(model).from_pretrained(tmp_path / "model")  # type: ignore[attr-defined]
    assert again.config == model.config and repr(again) == repr(model)
    by_name = load_pretrained(tmp_path / "model")
    assert type(by_name) is type(model)
    inputs = _inputs(3, 5, "weights")
    with torch.no_grad():
        if isinstance(model, MultiheadAttentionBlock):
            y = torch.randn(3, 4, 5)
            torch.testing.assert_close(
                again(inputs["x"][..., :D].nan_to_num(), y), model(inputs["x"].nan_to_num(), y)
            )
        else:
            torch.testing.assert_close(again(**inputs), model(**inputs))
