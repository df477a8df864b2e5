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

from collections.abc import Sequence
from enum import Enum
from typing import TypeVar

import torch
from torch import Tensor, nn

__all__ = [
    "FusionType",
    "PoolType",
    "check_dim",
    "check_dims",
    "check_like",
    "check_mask",
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
    """A layer width: a positive ``int`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return value


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
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


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
    if x.dim() != 3:
        raise ValueError(
            f"{name} must have shape (B, M, D) (batch, set size, features); "
            f"got {x.dim()}-D shape {_shape(x)}"
        )
    if not (x.is_floating_point()):
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {x.dtype}")
    if feature_dim is not None and x.shape[-1] != feature_dim:
        raise ValueError(
            f"{name} must have {feature_dim} features in its last dimension "
            f"(shape (B, M, {feature_dim})); got shape {_shape(x)}"
        )
    if module is not None:
        reference = next(iter(module.parameters()), None)
        if reference is not None:
            check_like(x, reference, name=name, what="the model")


def check_mask(mask: object, x: Tensor, *, name: str = "mask") -> None:
    """A mask is ``None``, or a bool / floating ``(B, M)`` tensor of non-negative weights."""
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (B, M) or None; got {type(mask).__name__}"
        )
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
