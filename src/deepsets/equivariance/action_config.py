"""Group actions as plain JSON data, so layers built on them can be saved and loaded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .actions import (
    CyclicAction,
    GroupAction,
    ProductAction,
    ReflectionAction,
    SymmetricAction,
    TrivialAction,
)

__all__ = ["action_from_config", "action_to_config"]


def action_to_config(action: GroupAction) -> dict[str, Any]:
    """``{"action": class name, ...constructor arguments}`` for the library's actions."""
    kind = type(action)  # exact classes: a subclass may carry more than these arguments
    if isinstance(action, SymmetricAction) and kind is SymmetricAction:
        return {"action": "SymmetricAction", "n": action.n, "order": action.order}
    if isinstance(action, CyclicAction) and kind is CyclicAction:
        return {"action": "CyclicAction", "n": action.n}
    if kind is TrivialAction:
        return {"action": "TrivialAction"}
    if isinstance(action, ReflectionAction) and kind is ReflectionAction:
        return {"action": "ReflectionAction", "signs": action.signs.tolist()}
    if isinstance(action, ProductAction) and kind is ProductAction:
        return {"action": "ProductAction", "factors": [action_to_config(f) for f in action.factors]}
    raise TypeError(
        f"{type(action).__name__} cannot be written as JSON: only the deepsets.equivariance "
        f"actions (SymmetricAction, CyclicAction, TrivialAction, ReflectionAction, "
        f"ProductAction) can be saved"
    )


def action_from_config(config: Mapping[str, Any]) -> GroupAction:
    """The action :func:`action_to_config` wrote."""
    kind = config.get("action")
    arguments = {k: v for k, v in config.items() if k != "action"}
    if kind == "ProductAction":
        return ProductAction(*(action_from_config(f) for f in arguments["factors"]))
    simple: dict[str, Any] = {
        "SymmetricAction": SymmetricAction,
        "CyclicAction": CyclicAction,
        "TrivialAction": TrivialAction,
        "ReflectionAction": ReflectionAction,
    }
    if kind not in simple:
        raise ValueError(
            f"an action config must name one of {sorted([*simple, 'ProductAction'])} in its "
            f"'action' field; got {kind!r}"
        )
    return simple[kind](**arguments)
