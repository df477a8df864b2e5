"""Hostile and wrong input: every public entry point either answers correctly or raises a
``ValueError`` / ``TypeError`` naming the argument at fault.

Each example builds a valid call (any batch size including 0, any set size including 0,
contiguous, transposed or expanded tensors, bool or weight masks, padding full of NaN/±inf/
huge values) and then breaks at most one argument. A broken call must raise naming that
argument; a valid one must match a slow reference: a per-set loop in float64 for the
pooling, and each set run alone without its padding for the models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from deepsets import (
    DeepSetsConditional,
    DeepSetsEquivariant,
    DeepSetsInvariant,
    PermutationEquivariantLayer,
    equivariance,
)
from deepsets.functional import active_elements, masked_pool, segment_pool
from deepsets.testing import assert_equivariant, assert_invariant

FEATURES = 3
CONTEXT = 2

MODELS: dict[str, nn.Module] = {
    "invariant": DeepSetsInvariant(FEATURES, [6], [5], 2, pool_type="mean").eval(),
    "invariant-max": DeepSetsInvariant(FEATURES, [], [5], 2, pool_type="max").eval(),
    "equivariant": DeepSetsEquivariant(FEATURES, [4], 2, pool_type="max").eval(),
    "equivariant-pooled": DeepSetsEquivariant(
        FEATURES, [4], 2, pool_type="sum", final_pool="mean"
    ).eval(),
    "conditional": DeepSetsConditional(FEATURES, CONTEXT, [6], [5], 2, fusion_type="film").eval(),
    "layer": PermutationEquivariantLayer(FEATURES, 4, pool_type="sum").eval(),
}
ENTRY_POINTS = ["masked_pool", *MODELS]

X_FAULTS = ["x-type", "x-rank", "x-int", "x-complex", "x-bool", "x-width", "x-device", "x-dtype"]
MASK_FAULTS = [
    "mask-type",
    "mask-shape",
    "mask-int",
    "mask-complex",
    "mask-negative",
    "mask-nan",
    "mask-inf",
    "mask-device",
]
POOL_FAULTS = ["pool_type", "keepdim"]
CONTEXT_FAULTS = ["context-type", "context-shape", "context-int", "context-dtype", "context-device"]
PADDING = [0.0, math.nan, math.inf, -math.inf, 3e38, -1e30]


def _faults(entry: str) -> list[str | None]:
    faults: list[str | None] = [None, *X_FAULTS, *MASK_FAULTS]
    if entry == "masked_pool":
        faults += POOL_FAULTS
        faults.remove("x-width")  # any width is valid
        faults.remove("x-dtype")  # and any floating dtype: there are no parameters
    if entry == "conditional":
        faults += CONTEXT_FAULTS
    return faults


def _layout(t: Tensor, how: str) -> Tensor:
    """The same values, stored contiguously, transposed in memory, or broadcast."""
    if how == "transposed":
        return t.transpose(0, 1).contiguous().transpose(0, 1)
    if how == "expanded" and t.shape[0] > 0:
        return t[:1].expand_as(t)
    return t


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    entry = draw(st.sampled_from(ENTRY_POINTS))
    dtype = (
        torch.float32
        if entry != "masked_pool"
        else draw(st.sampled_from([torch.float32, torch.float64]))
    )
    batch = draw(st.integers(0, 3))
    size = draw(st.integers(0, 5))
    width = FEATURES if entry != "masked_pool" else draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, width, generator=generator, dtype=dtype)
    x = _layout(x, draw(st.sampled_from(["contiguous", "transposed", "expanded"])))

    mask_kind = draw(st.sampled_from(["none", "bool", "weights"]))
    mask: Tensor | None = None
    if mask_kind == "bool":
        mask = torch.rand(batch, size, generator=generator) < 0.6
    elif mask_kind == "weights":
        weights = torch.rand(batch, size, generator=generator) * 3
        mask = torch.where(weights < 0.8, torch.zeros(()), weights)
    if mask is not None:
        mask = _layout(mask, draw(st.sampled_from(["contiguous", "transposed", "expanded"])))
        padding = draw(st.sampled_from(PADDING))
        x = x.masked_fill(~active_elements(mask).unsqueeze(-1), padding)

    call: dict[str, Any] = {
        "entry": entry,
        "x": x,
        "mask": mask,
        "pool_type": draw(st.sampled_from(["sum", "mean", "max"])),
        "keepdim": draw(st.booleans()),
        "context": torch.randn(batch, CONTEXT, generator=generator),
        "fault": draw(st.sampled_from(_faults(entry))),
    }
    if call["fault"] is not None:
        call["fault_value"] = draw(st.integers(0, 2))
    return call


def _break(call: dict[str, Any]) -> str:
    """Apply the call's fault in place; return the argument name the error must mention."""
    fault: str = call["fault"]
    choice: int = call["fault_value"]
    x: Tensor = call["x"]
    batch, size = x.shape[0], x.shape[1]
    argument = fault.split("-")[0]
    if fault == "x-type":
        call["x"] = [x.tolist(), None, 3.0][choice]
    elif fault == "x-rank":
        call["x"] = [x[0] if batch else x.sum(0), x.unsqueeze(0), torch.tensor(1.0)][choice]
    elif fault == "x-int":
        call["x"] = x.nan_to_num().clamp(-9, 9).to([torch.int64, torch.int32, torch.uint8][choice])
    elif fault == "x-complex":
        call["x"] = x.to([torch.complex64, torch.complex128, torch.complex64][choice])
    elif fault == "x-bool":
        call["x"] = x > 0
    elif fault == "x-width":
        call["x"] = torch.zeros(batch, size, [FEATURES + 1, FEATURES - 1, 0][choice])
    elif fault == "x-device":  # on its own a meta x is fine for masked_pool: add a CPU mask
        call["x"] = x.to("meta")
        if call["mask"] is None:
            call["mask"] = torch.ones(batch, size, dtype=torch.bool)
    elif fault == "x-dtype":  # a float64 / float16 / bfloat16 input to a float32 model
        call["x"] = x.to([torch.float64, torch.float16, torch.bfloat16][choice])
    elif fault == "mask-type":
        call["mask"] = [[[True] * size] * batch, "all", 1.0][choice]
    elif fault == "mask-shape":
        call["mask"] = torch.ones([(batch,), (batch, size, 1), (batch + 1, size)][choice]).bool()
    elif fault == "mask-int":
        call["mask"] = torch.ones(batch, size, dtype=[torch.int64, torch.uint8, torch.int8][choice])
    elif fault == "mask-complex":
        call["mask"] = torch.ones(batch, size, dtype=torch.complex64)
    elif fault in ("mask-negative", "mask-nan", "mask-inf"):
        bad = {"mask-negative": -0.5, "mask-nan": math.nan, "mask-inf": math.inf}[fault]
        weights = torch.ones(max(batch, 1), max(size, 1))
        weights[-1, -1] = bad
        call["x"] = torch.randn(max(batch, 1), max(size, 1), x.shape[2], dtype=x.dtype)
        call["context"] = torch.randn(max(batch, 1), CONTEXT)
        call["mask"] = weights
    elif fault == "mask-device":
        call["mask"] = torch.ones(batch, size, device="meta")
    elif fault == "pool_type":
        call["pool_type"] = ["median", None, 2][choice]
    elif fault == "keepdim":
        call["keepdim"] = ["yes", None, 1][choice]
    elif fault == "context-type":
        call["context"] = [None, [[0.0] * CONTEXT] * batch, 1.0][choice]
    elif fault == "context-shape":
        call["context"] = torch.zeros(
            [(batch,), (batch + 1, CONTEXT), (batch, CONTEXT + 1)][choice]
        )
    elif fault == "context-int":
        call["context"] = torch.zeros(batch, CONTEXT, dtype=torch.int64)
    elif fault == "context-dtype":
        call["context"] = torch.zeros(batch, CONTEXT, dtype=torch.float64)
    elif fault == "context-device":
        call["context"] = torch.zeros(batch, CONTEXT, device="meta")
    return argument


def _invoke(call: dict[str, Any]) -> Tensor:
    entry = call["entry"]
    if entry == "masked_pool":
        return masked_pool(call["x"], call["pool_type"], call["mask"], call["keepdim"])
    model = MODELS[entry]
    args = (call["context"],) if entry == "conditional" else ()
    with torch.no_grad():
        return model(call["x"], *args, mask=call["mask"])


def _pool_reference(x: Tensor, pool: str, mask: Tensor | None) -> Tensor:
    """One set at a time, in float64, from the definition."""
    batch, size, width = x.shape
    weights = torch.ones(batch, size, dtype=torch.float64) if mask is None else mask.double()
    out = torch.zeros(batch, width, dtype=torch.float64)
    for b in range(batch):
        keep = weights[b] > 0
        elements, w = x[b][keep].double(), weights[b][keep]
        if len(w) == 0:
            continue
        if pool == "sum":
            out[b] = (w[:, None] * elements).sum(0)
        elif pool == "mean":
            out[b] = (w[:, None] * elements).sum(0) / w.sum()
        else:
            out[b] = elements.max(0).values
    return out


def _model_reference(call: dict[str, Any], out: Tensor) -> None:
    """Each set alone, without padding, gives the batched answer; padded outputs are 0."""
    model = MODELS[call["entry"]]
    x, mask = call["x"], call["mask"]
    for b in range(x.shape[0]):
        keep = torch.ones(x.shape[1], dtype=torch.bool) if mask is None else mask[b] > 0
        alone = x[b][keep].unsqueeze(0).contiguous()
        weights = None if mask is None else mask[b][keep].float().unsqueeze(0)
        args = (call["context"][b : b + 1],) if call["entry"] == "conditional" else ()
        with torch.no_grad():
            expected = model(alone, *args, mask=weights)[0]
        if out.dim() == 3:  # per-element output
            torch.testing.assert_close(out[b][keep], expected, atol=1e-5, rtol=1e-4)
            assert bool((out[b][~keep] == 0).all())
        else:
            torch.testing.assert_close(out[b], expected, atol=1e-5, rtol=1e-4)


@settings(max_examples=300)
@given(call=calls())
def test_forward_entry_points(call: dict[str, Any]) -> None:
    if call["fault"] is not None:
        argument = _break(call)
        with pytest.raises((ValueError, TypeError)) as caught:
            _invoke(call)
        assert re.search(rf"\b{argument}\b", str(caught.value)), (call["fault"], caught.value)
        return

    out = _invoke(call)
    x, mask = call["x"], call["mask"]
    assert bool(torch.isfinite(out).all())
    if call["entry"] == "masked_pool":
        expected = _pool_reference(x, call["pool_type"], mask)
        if call["keepdim"]:
            expected = expected.unsqueeze(1)
        assert out.dtype == x.dtype
        torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    else:
        _model_reference(call, out)


# ---------------------------------------------------------------------------- constructors

BAD_VALUES: dict[str, list[Any]] = {
    "int": [0, -1, 2.5, "3", True, None, [3]],
    "dims": ["abc", 3, None, [0], [2, -1], [2.0], [True]],
    "pool": ["median", 3, None, ""],
    "final_pool": ["median", 3, ""],
    "dropout": [-0.1, 1.0, "0.1", None, math.nan, True],
    "fusion": ["mul", 1, None],
    "flag": ["yes", 1, None],
}
CONSTRUCTORS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any], dict[str, str]]] = {
    "invariant": (
        DeepSetsInvariant,
        {"input_dim": 3, "phi_hidden_dims": [4], "rho_hidden_dims": [4], "output_dim": 2},
        {
            "input_dim": "int",
            "phi_hidden_dims": "dims",
            "rho_hidden_dims": "dims",
            "output_dim": "int",
            "pool_type": "pool",
            "dropout": "dropout",
        },
    ),
    "equivariant": (
        DeepSetsEquivariant,
        {"input_dim": 3, "hidden_dims": [4], "output_dim": 2},
        {
            "input_dim": "int",
            "hidden_dims": "dims",
            "output_dim": "int",
            "pool_type": "pool",
            "final_pool": "final_pool",
            "dropout": "dropout",
        },
    ),
    "conditional": (
        DeepSetsConditional,
        {
            "input_dim": 3,
            "context_dim": 2,
            "phi_hidden_dims": [4],
            "rho_hidden_dims": [4],
            "output_dim": 2,
        },
        {
            "input_dim": "int",
            "context_dim": "int",
            "phi_hidden_dims": "dims",
            "rho_hidden_dims": "dims",
            "output_dim": "int",
            "pool_type": "pool",
            "fusion_type": "fusion",
            "context_in_rho": "flag",
        },
    ),
    "layer": (
        PermutationEquivariantLayer,
        {"input_dim": 3, "output_dim": 2},
        {"input_dim": "int", "output_dim": "int", "pool_type": "pool"},
    ),
}


@st.composite
def constructions(draw: st.DrawFn) -> tuple[Callable[..., nn.Module], dict[str, Any], str]:
    name = draw(st.sampled_from(sorted(CONSTRUCTORS)))
    cls, valid, kinds = CONSTRUCTORS[name]
    argument = draw(st.sampled_from(sorted(kinds)))
    kwargs = dict(valid)
    kwargs[argument] = draw(st.sampled_from(BAD_VALUES[kinds[argument]]))
    return cls, kwargs, argument


@given(construction=constructions())
def test_constructors_name_the_bad_argument(
    construction: tuple[Callable[..., nn.Module], dict[str, Any], str],
) -> None:
    cls, kwargs, argument = construction
    with pytest.raises((ValueError, TypeError)) as caught:
        cls(**kwargs)
    assert argument in str(caught.value)


def test_film_needs_a_hidden_layer() -> None:
    with pytest.raises(ValueError, match="phi_hidden_dims"):
        DeepSetsConditional(3, 2, [], [4], 2, fusion_type="film")


# ------------------------------------------------------------------- the other entry points


def test_active_elements_rejects_non_tensors() -> None:
    with pytest.raises(TypeError, match="mask"):
        active_elements([1, 0])  # type: ignore[arg-type]


@pytest.mark.parametrize("helper", [assert_invariant, assert_equivariant])
def test_symmetry_helpers_pass_on_the_models_error(helper: Callable[..., None]) -> None:
    model = MODELS["layer"] if helper is assert_equivariant else MODELS["invariant"]
    with pytest.raises(ValueError, match="x must have"):
        helper(model, torch.randn(2, 4))
    with pytest.raises(ValueError, match="mask"):
        helper(model, torch.randn(2, 4, FEATURES), torch.ones(2, 5, dtype=torch.bool))
    helper(model, torch.randn(0, 4, FEATURES))  # an empty batch is fine
    helper(model, torch.randn(2, 0, FEATURES))  # and so are empty sets


def test_autocast_accepts_mixed_dtypes() -> None:
    """Inside autocast a bf16 input to a float32 model is intended, not a dtype error."""
    model = MODELS["conditional"]
    x = torch.randn(2, 4, FEATURES, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        out = model(x, torch.randn(2, CONTEXT), mask=torch.ones(2, 4, dtype=torch.bool))
    assert out.shape == (2, 2)
    assert bool(torch.isfinite(out).all())


# ------------------------------------------------------------------------ segment_pool

SEGMENT_FAULTS = [
    "values-type",
    "values-rank",
    "values-int",
    "values-complex",
    "values-device",
    "offsets-float",
    "offsets-rank",
    "offsets-device",
    "offsets-end",
    "index-range",
    "weights-shape",
    "weights-int",
    "weights-negative",
    "weights-nan",
    "pool_type",
]


@st.composite
def segment_calls(draw: st.DrawFn) -> dict[str, Any]:
    sizes = draw(st.lists(st.integers(0, 4), min_size=0, max_size=4))
    width = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    rows = sum(sizes)
    values = torch.randn(rows, width, generator=generator, dtype=dtype)
    if rows and draw(st.booleans()):
        values = values[:1].expand(rows, width)  # a broadcast view
    weights: Tensor | None = None
    kind = draw(st.sampled_from(["none", "bool", "weights"]))
    if kind == "bool":
        weights = torch.rand(rows, generator=generator) < 0.7
    elif kind == "weights":
        weights = torch.rand(rows, generator=generator) * (
            torch.rand(rows, generator=generator) < 0.7
        )
    if weights is not None:
        inactive = ~active_elements(weights).unsqueeze(-1)
        values = values.masked_fill(inactive, draw(st.sampled_from(PADDING)))
    counts = torch.tensor(sizes, dtype=torch.long)
    return {
        "values": values,
        "sizes": sizes,
        "offsets": torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]),
        "index": torch.repeat_interleave(torch.arange(len(sizes)), counts),
        "form": draw(st.sampled_from(["offsets", "index"])),
        "weights": weights,
        "pool_type": draw(st.sampled_from(["sum", "mean", "max"])),
        "fault": draw(st.sampled_from([None, *SEGMENT_FAULTS])),
        "fault_value": draw(st.integers(0, 2)),
    }


def _break_segment(call: dict[str, Any]) -> str:
    fault, choice, values = call["fault"], call["fault_value"], call["values"]
    rows = values.shape[0]
    if fault == "values-type":
        call["values"] = [values.tolist(), None, 1.0][choice]
    elif fault == "values-rank":
        call["values"] = [values.flatten(), values.unsqueeze(0), torch.tensor(1.0)][choice]
    elif fault == "values-int":
        call["values"] = values.nan_to_num().clamp(-9, 9).long()
    elif fault == "values-complex":
        call["values"] = values.to(torch.complex64)
    elif fault == "values-device":
        call["values"] = values.to("meta")
    elif fault == "offsets-float":
        call["form"], call["offsets"] = "offsets", call["offsets"].float()
    elif fault == "offsets-rank":
        call["form"], call["offsets"] = "offsets", call["offsets"].unsqueeze(0)
    elif fault == "offsets-device":
        call["form"], call["offsets"] = "offsets", call["offsets"].to("meta")
    elif fault == "offsets-end":
        call["form"] = "offsets"
        call["offsets"] = call["offsets"].clone()
        call["offsets"][-1] = rows + 1 + choice
    elif fault == "index-range":
        call["form"] = "index"
        sets = len(call["sizes"])  # the num_sets passed: the new row's set is outside it
        call["index"] = torch.cat([call["index"], torch.tensor([[-1, sets, sets + 3][choice]])])
        call["values"] = torch.cat([values, torch.zeros(1, values.shape[1], dtype=values.dtype)])
        call["weights"] = None
    elif fault == "weights-shape":
        call["weights"] = torch.ones([(rows + 1,), (rows, 1), (1, rows)][choice])
    elif fault == "weights-int":
        call["weights"] = torch.ones(rows, dtype=torch.int64)
    elif fault in ("weights-negative", "weights-nan"):
        call["values"] = torch.randn(3, values.shape[1], dtype=values.dtype)
        call["sizes"], call["form"] = [3], "offsets"
        call["offsets"] = torch.tensor([0, 3])
        call["weights"] = torch.tensor([1.0, -0.5 if fault == "weights-negative" else math.nan, 1])
    elif fault == "pool_type":
        call["pool_type"] = ["median", None, 3][choice]
    return fault.split("-")[0]


def _run_segment(call: dict[str, Any]) -> Tensor:
    if call["form"] == "offsets":
        split = {"offsets": call["offsets"]}
    else:
        split = {"index": call["index"], "num_sets": len(call["sizes"])}
    return segment_pool(call["values"], call["pool_type"], weights=call["weights"], **split)


@settings(max_examples=150)
@given(call=segment_calls())
def test_segment_pool_hostile_input(call: dict[str, Any]) -> None:
    """Packed rows: a named error for every broken argument, the padded answer otherwise."""
    if call["fault"] is not None:
        argument = _break_segment(call)
        with pytest.raises((ValueError, TypeError)) as caught:
            _run_segment(call)
        assert re.search(rf"\b{argument}\b", str(caught.value)), (call["fault"], caught.value)
        return
    out = _run_segment(call)
    sizes, values, weights = call["sizes"], call["values"], call["weights"]
    longest = max(sizes, default=0)
    padded = torch.zeros(len(sizes), longest, values.shape[1], dtype=values.dtype)
    mask = torch.zeros(len(sizes), longest)
    for s, (start, size) in enumerate(zip(call["offsets"][:-1].tolist(), sizes, strict=True)):
        padded[s, :size] = values[start : start + size]
        mask[s, :size] = 1.0 if weights is None else weights[start : start + size].double()
    assert out.shape == (len(sizes), values.shape[1])
    assert out.dtype == values.dtype
    assert bool(torch.isfinite(out).all())
    expected = _pool_reference(padded, call["pool_type"], mask)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------- the equivariance layers

#: name -> (layer, input shape for (batch, n), does it take a mask)
GRID_LAYERS: dict[str, tuple[nn.Module, Callable[[int, int], tuple[int, ...]], bool]] = {
    "EquivariantLinear": (
        equivariance.EquivariantLinear(
            equivariance.SymmetricAction(4), equivariance.SymmetricAction(4), 2, 3
        ),
        lambda batch, n: (batch, 4, 2),
        False,
    ),
    "SecondOrderEquivariantLayer": (
        equivariance.SecondOrderEquivariantLayer(2, 3, pool_type="mean"),
        lambda batch, n: (batch, n, n, 2),
        False,
    ),
    "ExchangeableLayer": (
        equivariance.ExchangeableLayer(2, 3),
        lambda batch, n: (batch, n, n + 1, 2),
        True,
    ),
    "CyclicConvLayer": (
        equivariance.CyclicConvLayer(4, 2, 3),
        lambda batch, n: (batch, 4, 2),
        False,
    ),
}
GRID_FAULTS = ["x-type", "x-rank", "x-int", "x-complex", "x-bool", "x-width", "x-device", "x-dtype"]
GRID_MASK_FAULTS = [
    "mask-type",
    "mask-shape",
    "mask-int",
    "mask-negative",
    "mask-nan",
    "mask-device",
]


@st.composite
def grid_calls(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(GRID_LAYERS)))
    _, shape_of, takes_mask = GRID_LAYERS[name]
    batch, n = draw(st.integers(0, 3)), draw(st.integers(0, 4))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = _layout(
        torch.randn(shape_of(batch, n), generator=generator),
        draw(st.sampled_from(["contiguous", "transposed", "expanded"])),
    )
    mask = None
    if takes_mask and draw(st.booleans()):
        mask = torch.rand(x.shape[:-1], generator=generator) < 0.7
        x = x.masked_fill(~mask.unsqueeze(-1), draw(st.sampled_from(PADDING)))
    faults = [None, *GRID_FAULTS, *(GRID_MASK_FAULTS if takes_mask else [])]
    return {
        "name": name,
        "x": x,
        "mask": mask,
        "fault": draw(st.sampled_from(faults)),
        "fault_value": draw(st.integers(0, 2)),
    }


def _break_grid(call: dict[str, Any]) -> str:
    fault, choice, x = call["fault"], call["fault_value"], call["x"]
    if fault == "x-type":
        call["x"] = [x.tolist(), None, 3.0][choice]
    elif fault == "x-rank":
        call["x"] = [x.flatten(0, 1), x.unsqueeze(0), torch.tensor(1.0)][choice]
    elif fault == "x-int":
        call["x"] = x.nan_to_num().clamp(-9, 9).to([torch.int64, torch.int32, torch.uint8][choice])
    elif fault == "x-complex":
        call["x"] = x.to(torch.complex64)
    elif fault == "x-bool":
        call["x"] = x > 0
    elif fault == "x-width":
        call["x"] = torch.zeros(*x.shape[:-1], [1, 3, 0][choice])
    elif fault == "x-device":
        call["x"] = x.to("meta")
    elif fault == "x-dtype":  # float64 / float16 input to a float32 layer, outside autocast
        call["x"] = x.to([torch.float64, torch.float16, torch.bfloat16][choice])
    elif fault == "mask-type":
        call["mask"] = ["all", 1.0, [True]][choice]
    elif fault == "mask-shape":
        call["mask"] = torch.ones(*x.shape[:-2], x.shape[-2] + 1, dtype=torch.bool)
    elif fault == "mask-int":
        call["mask"] = torch.ones(x.shape[:-1], dtype=torch.int64)
    elif fault in ("mask-negative", "mask-nan"):
        call["x"] = torch.randn(2, 3, 4, x.shape[-1])
        call["mask"] = torch.ones(2, 3, 4)
        call["mask"][1, 2, 3] = -1.0 if fault == "mask-negative" else math.nan
    elif fault == "mask-device":
        call["mask"] = torch.ones(x.shape[:-1], device="meta")
    return fault.split("-")[0]


def _run_grid(call: dict[str, Any]) -> Tensor:
    layer = GRID_LAYERS[call["name"]][0]
    kwargs = {} if call["mask"] is None else {"mask": call["mask"]}
    with torch.no_grad():
        return layer(call["x"], **kwargs)


@settings(max_examples=150)
@given(call=grid_calls())
def test_equivariance_layers_hostile_input(call: dict[str, Any]) -> None:
    """Broken calls raise naming the argument; valid ones give each sample's own answer."""
    if call["fault"] is not None:
        argument = _break_grid(call)
        with pytest.raises((ValueError, TypeError)) as caught:
            _run_grid(call)
        assert re.search(rf"\b{argument}\b", str(caught.value)), (call["fault"], caught.value)
        return
    out = _run_grid(call)
    x, mask = call["x"], call["mask"]
    assert out.shape[0] == x.shape[0]
    assert bool(torch.isfinite(out).all())
    for b in range(x.shape[0]):  # batch elements are independent; padding never leaks
        alone = dict(
            call, x=x[b : b + 1].contiguous(), mask=None if mask is None else mask[b : b + 1]
        )
        torch.testing.assert_close(out[b : b + 1], _run_grid(alone), atol=1e-5, rtol=1e-5)
    if mask is not None:
        assert bool((out[~mask] == 0).all())
