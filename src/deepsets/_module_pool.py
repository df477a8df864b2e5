r"""A module as the pooling of :class:`~deepsets.DeepSetsInvariant`: attention pooling
(:class:`~deepsets.PMA` with ``flatten=True``, :class:`~deepsets.GatedAttentionPooling`)
in place of a fixed sum, mean or max.

.. math:: f(X) = \rho\Big(\mathrm{pool}_\theta\big(\{\varphi(x)\}_{x \in X}\big)\Big)

A pooling module has ``input_dim`` (the width it pools, φ's output width) and
``pooled_dim`` (the width it returns, ρ's input width), and is called as the functional
pools are: ``module(h, mask)`` on padded ``h (B, M, input_dim)`` and
``module(rows, weights, index=index, num_sets=S)`` on packed rows, returning
``(B, pooled_dim)`` / ``(S, pooled_dim)``. The library's attention blocks are run on the
model's already checked input without checking it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from torch import Tensor, nn

from ._validation import PoolType, resolve_option
from .attention._ops import _packed, padded_sets
from .attention.blocks import SetBlock
from .functional.segment import JaggedParts
from .serialization import module_from_config

__all__ = ["pool_module_packed", "pool_module_padded", "resolve_pool"]

_MODULES = (
    "or a pooling module: PMA(dim, flatten=True), GatedAttentionPooling(dim), or the saved "
    "form {'class': ..., 'config': {...}} of one"
)


def resolve_pool(pool_type: object, latent_dim: int) -> tuple[PoolType | None, nn.Module | None]:
    """``(PoolType, None)`` for an option string, ``(None, module)`` for a pooling module
    (or its saved form, rebuilt by class name from the registry of
    :mod:`deepsets.serialization`), checked against φ's output width ``latent_dim``.

    Raises:
        ValueError: an unknown string (or not a string), a module whose ``input_dim`` is
            not ``latent_dim``, a :class:`~deepsets.PMA` without ``flatten=True``, or an
            unknown saved class.
        TypeError: a module without int ``input_dim`` and ``pooled_dim``.
    """
    if isinstance(pool_type, Mapping):
        pool_type = module_from_config(pool_type, name="pool_type")
    if not isinstance(pool_type, nn.Module):
        try:
            return resolve_option(pool_type, PoolType, name="pool_type"), None
        except ValueError as error:
            raise ValueError(f"{error} ({_MODULES})") from None
    name = type(pool_type).__name__
    for attribute in ("input_dim", "pooled_dim"):
        value = getattr(pool_type, attribute, None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"pool_type={name}(...) must have an int {attribute} (the width it pools / "
                f"returns), as PMA and GatedAttentionPooling do; got {value!r}"
            )
    if getattr(pool_type, "flatten", True) is False:
        raise ValueError(
            f"pool_type={name}(...) must return one vector per set: build it with "
            f"flatten=True (output (B, num_seeds * dim)); got flatten=False"
        )
    if pool_type.input_dim != latent_dim:
        raise ValueError(
            f"pool_type={name}(...) pools vectors of width input_dim={pool_type.input_dim}, "
            f"but phi's output width (phi_hidden_dims[-1], or input_dim without hidden "
            f"layers) is {latent_dim}; expected input_dim={latent_dim}"
        )
    return None, pool_type


def pool_module_padded(module: nn.Module, h: Tensor, mask: Tensor | None) -> Tensor:
    """``module`` on padded ``h (B, M, L)`` with the model's checked ``mask``:
    ``(B, pooled_dim)``."""
    if isinstance(module, SetBlock):
        sets = padded_sets(h, mask)
        return module.finish(sets, module.transform(sets))
    return cast(Tensor, module(h, mask))


def pool_module_packed(module: nn.Module, h: Tensor, parts: JaggedParts) -> Tensor:
    """``module`` on packed rows ``h (N, L)`` of the sets of ``parts``: ``(S, pooled_dim)``."""
    if isinstance(module, SetBlock):
        sets = _packed(h, parts.set_index, parts.num_sets, parts.weights, None)
        return module.finish(sets, module.transform(sets))
    return cast(Tensor, module(h, parts.weights, index=parts.set_index, num_sets=parts.num_sets))
