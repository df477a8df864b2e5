"""Cheap access to the parts of jagged nested tensors (``torch.nested``, ``layout=torch.jagged``).

A jagged ``NestedTensor`` is a Python tensor subclass: every attribute read and method call
on it (``.dtype``, ``.is_nested``, ``.values()``) goes through ``__torch_function__``, which
is slow inside a training step (measured in ``benchmarks/ragged.py``; numbers in the docs'
Architecture Decisions page). These helpers read the buffers the subclass holds instead,
and fall back to the public API where that matters: under ``torch.compile`` (Dynamo traces
the public API) and when a gradient must flow into the nested tensor itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

_JaggedTensor: type | None
try:  # the class behind layout=torch.jagged (a private module, stable since torch 2.3)
    from torch.nested._internal.nested_tensor import NestedTensor as _JaggedTensor
except ImportError:  # pragma: no cover - a future torch that moved it
    _JaggedTensor = None

__all__ = [
    "SegmentLayout",
    "as_long",
    "is_jagged",
    "jagged_values",
    "offsets_to_index",
    "segment_layout",
]


def is_jagged(x: Tensor) -> bool:
    """Whether ``x`` is a jagged nested tensor (``layout=torch.jagged``)."""
    if _JaggedTensor is not None:
        return isinstance(x, _JaggedTensor)
    return bool(x.is_nested) and x.layout == torch.jagged  # pragma: no cover


def _wrapper_requires_grad(x: Tensor) -> bool:
    with torch._C.DisableTorchFunctionSubclass():  # 0.3 µs instead of 6 µs
        return bool(x.requires_grad)


def jagged_values(x: Tensor) -> Tensor:
    """``x.values()``: the ``(N, ...)`` buffer of rows behind a jagged ``x`` (for a view with
    holes, the whole buffer, as ``values()`` gives it).

    Reads the buffer directly unless autograd has to see the view (``x`` itself requires a
    gradient) or ``torch.compile`` is tracing.
    """
    raw = getattr(x, "_values", None)
    if raw is None or torch.compiler.is_compiling() or _wrapper_requires_grad(x):
        return x.values()
    # A buffer that requires grad under a wrapper that does not (built under no_grad):
    # the public values() would not connect it to the graph either.
    return raw.detach() if raw.requires_grad else raw


def as_long(t: Tensor) -> Tensor:
    """``t.to(torch.long)`` without a dispatch when it already is (the common case)."""
    return t if t.dtype == torch.long else t.to(torch.long)


def _set_sizes(offsets: Tensor) -> Tensor:
    offsets = as_long(offsets)
    return offsets[1:] - offsets[:-1]  # (S,)


def _index_from_sizes(sizes: Tensor, num_rows: int) -> Tensor:
    sets = torch.arange(sizes.shape[0], device=sizes.device)
    return torch.repeat_interleave(sets, sizes, output_size=num_rows)


def offsets_to_index(offsets: Tensor, num_rows: int) -> Tensor:
    """``(N,)`` int64 set index of every row from ``(S + 1,)`` CSR offsets."""
    return _index_from_sizes(_set_sizes(offsets), num_rows)


class SegmentLayout(NamedTuple):
    """What pooling needs to know about CSR offsets, derived once per offsets tensor."""

    set_index: Tensor  # (N,) int64 set of every row
    divisor: Tensor  # (S, 1) int64 set sizes, empty sets as 1: an unweighted mean's divisor


def _layout(offsets: Tensor, num_rows: int) -> SegmentLayout:
    sizes = _set_sizes(offsets)
    return SegmentLayout(_index_from_sizes(sizes, num_rows), sizes.clamp(min=1).unsqueeze(-1))


# id(offsets) -> (weak reference to the offsets, their version counter, the layout).
# Jagged tensors that share offsets (a model's input and its equivariant output, a batch
# and its weights) and repeated forwards over one batch derive the layout once, as a PyG
# batch vector is built once per batch. An entry is dropped when its offsets die. (A plain
# dict: WeakTensorKeyDictionary's Python-level keys cost ~50 µs per lookup with the cold
# caches of a training step.)
_LAYOUTS: dict[int, tuple[weakref.ref[Tensor], int, SegmentLayout]] = {}


def _forget(key: int) -> Callable[[object], None]:
    def callback(_ref: object) -> None:
        _LAYOUTS.pop(key, None)

    return callback


def segment_layout(offsets: Tensor, num_rows: int) -> SegmentLayout:
    """The row index and mean divisor of ``(S + 1,)`` CSR offsets over ``num_rows`` rows.

    Cached per offsets tensor (rebuilt if the offsets were modified in place); computed
    afresh while ``torch.compile`` traces or under inference mode.
    """
    if (
        torch.compiler.is_compiling()
        or torch.is_inference_mode_enabled()  # inference tensors cannot be saved for later
        or offsets.is_inference()  # and have no version counter
    ):
        return _layout(offsets, num_rows)
    key, version = id(offsets), offsets._version
    cached = _LAYOUTS.get(key)
    if (
        cached is not None
        and cached[0]() is offsets
        and cached[1] == version
        and cached[2].set_index.shape[0] == num_rows
    ):
        return cached[2]
    layout = _layout(offsets, num_rows)
    _LAYOUTS[key] = (weakref.ref(offsets, _forget(key)), version, layout)
    return layout
