"""Input checks and option resolution: the one place user input is validated.

Public ``forward`` methods call these cheap checks once, at the edge; everything behind
them trusts its input. Option strings (``pool_type``, ``fusion_type``, ...) are resolved
to enum members here and nowhere else, so a typo fails with the list of allowed choices.

Shape, dtype and device checks read only metadata, so ``torch.compile`` turns them into
guards and ``torch.export`` into shape assertions: no graph break. The one data-dependent
check (mask weights finite and non-negative, one ``O(B·M)`` pass next to the model's
``O(B·M·D)``) raises ``ValueError`` in eager mode; while ``torch.compile`` or
``torch.export`` traces it becomes a ``torch._assert_async`` inside the graph (a
``RuntimeError`` with the same message at run time, no host sync on accelerators), so
compiled graphs have no Python branch on tensor values. ONNX has no assertion operator:
exported ONNX graphs trust their mask.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from enum import Enum
from typing import TypeVar, cast

import torch
from torch import Tensor, nn

from ._jagged import is_jagged, jagged_values

__all__ = [
    "FusionType",
    "PoolType",
    "check_dim",
    "check_dims",
    "check_jagged_mask",
    "check_like",
    "check_mask",
    "check_segment_input",
    "check_set_input",
    "resolve_option",
]


class PoolType(str, Enum):
    """Symmetric aggregations over the set dimension."""

    SUM = "sum"
    MEAN = "mean"
    MAX = "max"


class FusionType(str, Enum):
    """How :class:`~deepsets.DeepSetsConditional` injects the context into φ."""

    CONCAT = "concat"
    FILM = "film"
    ADD = "add"


E = TypeVar("E", bound=Enum)


def resolve_option(value: object, enum: type[E], *, name: str) -> E:
    """Turn a user's option string (or enum member) into ``enum``'s member.

    Raises:
        ValueError: naming ``name``, the value given and the allowed choices.
    """
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.lower())
        except ValueError:
            pass
    choices = ", ".join(repr(m.value) for m in enum)
    raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def check_dim(value: object, *, name: str) -> int:
    """A positive integer — a layer width, a count, a step — as a Python ``int``.

    Anything with ``__index__`` counts (NumPy integers from a config file, say); bools and
    floats do not.
    """
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return number


def check_dims(values: object, *, name: str) -> list[int]:
    """A list of layer widths, possibly empty."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of positive ints; got {values!r}")
    return [check_dim(v, name=f"{name}[{i}]") for i, v in enumerate(values)]


def check_dropout(value: object, *, name: str = "dropout") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1); got {value!r}")
    return float(value)


def _shape(t: Tensor) -> str:
    """``t``'s shape as Python writes a tuple: ``(2, 3)``, ``(2,)``; ragged sizes as ``j1``."""
    sizes = [str(s) for s in t.shape]
    return "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (``False`` where it does not exist, e.g. meta)."""
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def check_like(t: Tensor, reference: Tensor, *, name: str, what: str) -> None:
    """``t`` must be on ``reference``'s device and, outside autocast, share its dtype.

    ``what`` names the reference in the message (e.g. "the model").
    """
    if t.device != reference.device:
        raise ValueError(
            f"{name} is on {t.device} but {what} is on {reference.device}; move both to one device"
        )
    if t.dtype != reference.dtype and not autocast_enabled(t.device.type):
        raise TypeError(
            f"{name} has dtype {t.dtype} but {what} has dtype {reference.dtype}; "
            f"convert one of them (e.g. {name}.to({reference.dtype})) or run under torch.autocast"
        )


def first_parameter(module: nn.Module) -> Tensor | None:
    """``next(module.parameters(), None)`` without building the generator machinery.

    The same parameter (own parameters first, then the children's, depth first); a plain
    walk over the module dicts costs a fraction of ``parameters()`` when called once per
    forward with cold caches.
    """
    for parameter in module._parameters.values():
        if parameter is not None:
            return parameter
    for child in module._modules.values():
        if child is not None:
            found = first_parameter(child)
            if found is not None:
                return found
    return None


def check_set_input(
    x: object,
    feature_dim: int | None = None,
    *,
    name: str = "x",
    module: nn.Module | None = None,
) -> None:
    """``x`` must be a floating ``(B, M, D)`` tensor with ``D == feature_dim``.

    With ``module``, ``x`` must also share the device (and, outside autocast, the dtype)
    of the module's parameters.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, M, D); got {type(x).__name__}")
    if is_jagged(x):
        # Checked on the (N, D) rows: every read of the nested wrapper is a Python dispatch.
        _check_ragged_dim(x, name=name)
        rows = jagged_values(x)
        ndim = rows.dim() + 1
    else:
        if x.is_nested:
            raise ValueError(
                f"{name} is a nested tensor with layout {x.layout}; packed sets must use "
                f"layout=torch.jagged (see deepsets.ragged.pack_sets)"
            )
        rows = x
        ndim = x.dim()
    if ndim != 3:
        raise ValueError(
            f"{name} must have shape (B, M, D) (batch, set size, features); "
            f"got {ndim}-D shape {_shape(x)}"
        )
    if not rows.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {rows.dtype}")
    if feature_dim is not None and rows.shape[-1] != feature_dim:
        raise ValueError(
            f"{name} must have {feature_dim} features in its last dimension "
            f"(shape (B, M, {feature_dim})); got shape {_shape(x)}"
        )
    if module is not None:
        reference = first_parameter(module)
        if reference is not None:
            check_like(rows, reference, name=name, what="the model")


def check_mask(mask: object, x: Tensor, *, name: str = "mask") -> None:
    """A mask is ``None``, or a bool / floating ``(B, M)`` tensor of non-negative weights."""
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (B, M) or None; got {type(mask).__name__}"
        )
    if is_jagged(x):
        _check_nested_mask(mask, x, name=name)
        return
    expected = tuple(x.shape[:2])
    if tuple(mask.shape) != expected:
        raise ValueError(
            f"{name} must have shape (B, M) = {expected} to match x of shape {_shape(x)}; "
            f"got shape {_shape(mask)}"
        )
    if mask.device != x.device:
        raise ValueError(
            f"{name} is on {mask.device} but x is on {x.device}; move both to one device"
        )
    if mask.dtype == torch.bool:
        return
    if not mask.is_floating_point():
        raise TypeError(
            f"{name} must be a bool tensor or a floating tensor of weights; got dtype {mask.dtype}"
        )
    # One pass over B·M weights. Under torch.compile / torch.export it is an in-graph
    # assertion instead of a Python branch on tensor values (no graph break).
    valid = torch.isfinite(mask) & (mask >= 0)
    message = f"{name} weights must be finite and non-negative (0 marks padding)"
    if torch.compiler.is_compiling():
        torch._assert_async(valid.all(), message)
    elif mask.device.type != "meta" and not bool(valid.all()):
        bad = mask[~valid][0].item()
        raise ValueError(f"{message}; found {bad!r}")


def check_context(
    context: object,
    batch: int,
    context_dim: int,
    *,
    name: str = "context",
    like: Tensor | None = None,
) -> None:
    """``context`` must be a floating ``(B, context_dim)`` tensor (on ``like``'s device
    and, outside autocast, of its dtype)."""
    if not isinstance(context, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (B, C); got {type(context).__name__}"
        )
    if context.dim() != 2 or context.shape[0] != batch or context.shape[1] != context_dim:
        raise ValueError(
            f"{name} must have shape (B, context_dim) = ({batch}, {context_dim}); "
            f"got shape {_shape(context)}"
        )
    if not context.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {context.dtype}")
    if like is not None:
        check_like(context, like, name=name, what="x")


# --- packed (nested jagged / CSR) input ---------------------------------------------------


def _assert_values(valid: Tensor, message: str, bad: Tensor) -> None:
    """``ValueError`` (eager) or an in-graph assertion (compile/export) unless ``valid.all()``.

    ``bad`` holds the offending values (looked at only when raising, in eager mode).
    """
    if torch.compiler.is_compiling():
        torch._assert_async(valid.all(), message)
    elif valid.device.type != "meta" and not bool(valid.all()):
        found = bad[~valid][0].item() if bad.shape == valid.shape else None
        raise ValueError(message if found is None else f"{message}; found {found!r}")


def _check_ragged_dim(x: Tensor, *, name: str) -> None:
    """A jagged ``x`` must be ragged in dimension 1: ``(B, j, ...)``."""
    ragged = getattr(x, "_ragged_idx", 1)
    if ragged != 1:
        raise ValueError(
            f"{name} must be ragged in dimension 1, shape (B, j, D); "
            f"got a nested tensor of shape {_shape(x)} ragged in dimension {ragged}"
        )


def _check_nested_mask(mask: Tensor, x: Tensor, *, name: str) -> None:
    """Weights of a packed ``x`` ``(B, j, D)``: a jagged ``(B, j)`` tensor, same structure."""
    if not is_jagged(mask):
        raise ValueError(
            f"{name} for a nested x of shape {_shape(x)} must be a jagged nested tensor of "
            f"shape (B, j) with x's offsets (e.g. torch.nested.nested_tensor_from_jagged("
            f"weights, x.offsets())); got a tensor of shape {_shape(mask)}"
        )
    weights, rows = jagged_values(mask), jagged_values(x)
    mask_offsets: Tensor = mask.offsets()  # type: ignore[attr-defined]
    x_offsets: Tensor = x.offsets()  # type: ignore[attr-defined]
    ragged = getattr(mask, "_ragged_idx", 1)
    if weights.dim() != 1 or ragged != 1 or mask_offsets.shape[0] != x_offsets.shape[0]:
        raise ValueError(
            f"{name} must have shape (B, j) to match x of shape {_shape(x)}; "
            f"got shape {_shape(mask)}"
        )
    if weights.device != rows.device:
        raise ValueError(
            f"{name} is on {weights.device} but x is on {rows.device}; move both to one device"
        )
    if mask_offsets is not x_offsets:  # built apart: compare the set sizes
        same = weights.shape[0] == rows.shape[0] and torch.equal(
            mask_offsets.to(torch.long), x_offsets.to(torch.long)
        )
        if not same:
            raise ValueError(
                f"{name} must have the same set sizes as x (the same offsets); got set sizes "
                f"{_sizes(mask)} for {name} and {_sizes(x)} for x"
            )
    check_jagged_mask(weights, rows.shape[0], name=name, like=rows)


def _sizes(t: Tensor) -> str:
    offsets = t.offsets()  # type: ignore[attr-defined]
    sizes = (offsets[1:] - offsets[:-1]).tolist()
    return str(sizes) if len(sizes) <= 8 else f"{sizes[:8]}..."


def check_jagged_mask(
    weights: object, num_rows: int, *, name: str = "weights", like: Tensor | None = None
) -> None:
    """Per-row weights of packed sets: ``None`` or a bool / floating ``(N,)`` tensor ``>= 0``."""
    if weights is None:
        return
    if not isinstance(weights, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (N,) or None; got {type(weights).__name__}"
        )
    if weights.dim() != 1 or weights.shape[0] != num_rows:
        raise ValueError(
            f"{name} must have shape (N,) = ({num_rows},), one weight per row; "
            f"got shape {_shape(weights)}"
        )
    if like is not None and weights.device != like.device:
        raise ValueError(
            f"{name} is on {weights.device} but the values are on {like.device}; "
            f"move both to one device"
        )
    if weights.dtype == torch.bool:
        return
    if not weights.is_floating_point():
        raise TypeError(
            f"{name} must be a bool tensor or a floating tensor of weights; "
            f"got dtype {weights.dtype}"
        )
    _assert_values(
        torch.isfinite(weights) & (weights >= 0),
        f"{name} must hold finite, non-negative weights (0 marks padding)",
        weights,
    )


def _check_int_vector(t: object, *, name: str, what: str, like: Tensor) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor ({what}); got {type(t).__name__}")
    if t.dim() != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(
            f"{name} must be a 1-D integer tensor ({what}); "
            f"got shape {_shape(t)} and dtype {t.dtype}"
        )
    if t.device != like.device:
        raise ValueError(
            f"{name} is on {t.device} but values is on {like.device}; move both to one device"
        )
    return t


def check_segment_input(
    values: object,
    *,
    offsets: Tensor | None,
    index: Tensor | None,
    num_sets: object,
    name: str = "values",
) -> int:
    """Rows ``(N, D)`` of packed sets with CSR ``offsets`` ``(S + 1,)`` xor an ``index``
    ``(N,)``; returns the number of sets ``S``.

    The offsets must split the rows (start at 0, end at N, never decrease) and the index must
    lie in ``[0, S)``: checked in eager mode, an in-graph assertion under compile/export.
    Without ``num_sets`` the index form reads ``index.max() + 1`` (one host sync).
    """
    if not isinstance(values, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (N, D); got {type(values).__name__}"
        )
    if values.is_nested:
        raise ValueError(
            f"{name} must be a flat (N, D) tensor of rows; for a nested tensor x pass "
            f"x.values() and offsets=x.offsets(), or use masked_pool(x, ...)"
        )
    if values.dim() != 2:
        raise ValueError(
            f"{name} must have shape (N, D) (rows of all sets, features); "
            f"got {values.dim()}-D shape {_shape(values)}"
        )
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {values.dtype}")
    if num_sets is not None and (
        isinstance(num_sets, bool) or not isinstance(num_sets, int) or num_sets < 0
    ):
        raise ValueError(f"num_sets must be a non-negative int or None; got {num_sets!r}")
    if (offsets is None) == (index is None):
        raise ValueError(
            "pass exactly one of offsets (CSR, shape (S + 1,)) and index (shape (N,)); got "
            + ("both" if offsets is not None else "neither")
        )
    rows = values.shape[0]
    if offsets is not None:
        offsets = _check_int_vector(offsets, name="offsets", what="shape (S + 1,)", like=values)
        if offsets.shape[0] < 1:
            raise ValueError("offsets must have shape (S + 1,) with S >= 0; got shape (0,)")
        sets = offsets.shape[0] - 1
        if num_sets is not None and num_sets != sets:
            raise ValueError(
                f"num_sets must equal len(offsets) - 1 = {sets}; got num_sets={num_sets}"
            )
        ends = torch.stack([offsets[0], offsets[-1] - rows])
        # Formatting a symbolic size would specialise it (one recompile per size).
        n_rows = "N" if torch.compiler.is_compiling() else f"N = {rows}"
        _assert_values(
            ends == 0,
            f"offsets must start at 0 and end at {n_rows} (the number of rows of {name})",
            torch.stack([offsets[0], offsets[-1]]),
        )
        steps = offsets[1:] - offsets[:-1]
        _assert_values(steps >= 0, "offsets must be non-decreasing; found a step", steps)
        return sets
    index = _check_int_vector(cast(Tensor, index), name="index", what="shape (N,)", like=values)
    if index.shape[0] != rows:
        raise ValueError(
            f"index must have shape (N,) = ({rows},), the set of every row of {name}; "
            f"got shape {_shape(index)}"
        )
    if num_sets is None:
        if torch.compiler.is_compiling():
            raise ValueError("pass num_sets when pooling by index under torch.compile")
        num_sets = int(index.max().item()) + 1 if rows else 0
    num_sets = cast(int, num_sets)
    # Formatting a symbolic num_sets under compile would break the graph.
    bound = "" if torch.compiler.is_compiling() else f" = [0, {num_sets})"
    _assert_values(
        (index >= 0) & (index < num_sets),
        f"index must lie in [0, num_sets){bound}",
        index,
    )
    return num_sets
