"""The contract of the set modules: constructor arguments recorded, ``pool_type``, and one
forward preamble (input checks, then the padded or the packed body).

Modelled on PyG's ``torch_geometric.nn.aggr.Aggregation``: the base checks the input once
and dispatches; a subclass writes only what differs, its padded and packed bodies.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, ClassVar

from torch import Tensor, nn

from ._jagged import is_jagged
from ._validation import PoolType, check_mask, check_set_input
from .serialization import PretrainedMixin

__all__ = ["ConfigRecorder", "Pooled", "SetModule"]


def _plain(value: object) -> object:
    """A constructor argument as plain JSON-like data: enums by value, sequences as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, nn.Module) and isinstance(value, PretrainedMixin):
        # a module argument (e.g. an attention pooling): its class and its own config,
        # rebuilt by serialization.module_from_config
        return {"class": type(value).__name__, "config": dict(value.config)}
    to_config = getattr(value, "to_config", None)
    if callable(to_config):  # e.g. a group action
        try:
            return to_config()
        except TypeError:  # not plain data (a user's own action): save_pretrained refuses it
            return value
    return value


def _renamed(kwargs: dict[str, Any], aliases: Mapping[str, str], owner: str) -> None:
    """Move deprecated keyword ``aliases`` (old → new) to their new names, warning."""
    for old, new in aliases.items():
        if old not in kwargs:
            continue
        if new in kwargs:
            raise TypeError(f"{owner}() got both {new!r} and its deprecated alias {old!r}")
        warnings.warn(
            f"{owner}({old}=...) is deprecated; use {new}=...",
            DeprecationWarning,
            stacklevel=3,
        )
        kwargs[new] = kwargs.pop(old)


def _recording(init: Callable[..., None], owner: str, aliases: Mapping[str, str]) -> Any:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        _renamed(kwargs, aliases, owner)
        outermost = "_config_depth" not in self.__dict__
        depth = 0 if outermost else self.__dict__["_config_depth"]
        object.__setattr__(self, "_config_depth", depth + 1)
        try:
            init(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_config_depth", depth)
        if outermost:
            del self.__dict__["_config_depth"]
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = list(bound.arguments.items())[1:]  # without self
            self.config = {name: _plain(value) for name, value in arguments}

    return wrapper


class ConfigRecorder(PretrainedMixin):
    """Records the constructor arguments of every subclass in ``self.config``.

    After the outermost ``__init__`` returns, ``config`` maps each of its parameters to the
    value given (or the default), as plain JSON-like data (enums by value, tuples as lists,
    objects with ``to_config()`` as their config), so ``type(m)(**m.config)`` rebuilds the
    module and :meth:`save_pretrained` can write it. A subclass may list deprecated keyword
    names in ``_deprecated_arguments`` (``{"old": "new"}``): passing one warns with a
    ``DeprecationWarning`` and is recorded under the new name.
    """

    config: dict[str, Any]
    _deprecated_arguments: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            aliases = dict(getattr(cls, "_deprecated_arguments", {}))
            cls.__init__ = _recording(init, cls.__name__, aliases)  # type: ignore[method-assign]


class Pooled:
    """Provides ``pool_type``, the option string of the resolved ``self.pool``."""

    pool: PoolType

    @property
    def pool_type(self) -> str:
        """The pooling as its option string: ``"sum"``, ``"mean"`` or ``"max"``; for a
        model pooled by a module (``pool`` is ``None``, the module is ``pool_module``, as
        in :class:`~deepsets.DeepSetsInvariant`), the module's class name (``"PMA"``)."""
        pool: PoolType | None = self.pool
        if pool is None:
            return type(getattr(self, "pool_module", None)).__name__
        return pool.value


class SetModule(nn.Module, ConfigRecorder, Pooled):
    r"""Base of the set modules: checks ``x`` (and ``mask``) once, then runs the padded
    or the packed body.

    A subclass sets ``input_dim`` and ``pool`` (a :class:`PoolType`) and writes
    ``_forward_padded(x, mask, *extra)`` for ``(B, M, D)`` input with an optional ``(B, M)``
    mask, and ``_forward_packed(x, mask, *extra)`` for a jagged nested ``(B, j, D)`` input.
    ``forward(x, mask)`` calls :meth:`_forward_sets`; a module with more inputs (a context)
    overrides ``forward`` to pass them on as ``extra`` and checks them in
    :meth:`_check_extra`.
    """

    input_dim: int
    _forward_padded: Callable[..., Tensor]
    _forward_packed: Callable[..., Tensor]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self._forward_sets(x, mask)

    def _forward_sets(self, x: Tensor, mask: Tensor | None, *extra: Tensor) -> Tensor:
        check_set_input(x, self.input_dim, module=self)
        self._check_extra(x, *extra)
        check_mask(mask, x)
        if is_jagged(x):
            return self._forward_packed(x, mask, *extra)
        return self._forward_padded(x, mask, *extra)

    def _check_extra(self, x: Tensor, *extra: Tensor) -> None:
        """Check inputs besides ``x`` and ``mask`` (none by default)."""
