"""Pooling of padded sets ``(B, M, D)`` with an optional mask: the pooling semantics.

Every model in the library pools padded input through :func:`masked_pool`. The semantics,
shared by every input form (padded, packed, streamed):

* ``sum``  — :math:`\\sum_i w_i x_i`; a bool mask means :math:`w_i \\in \\{0, 1\\}`, a float
  mask holds multiplicities.
* ``mean`` — :math:`\\sum_i w_i x_i / \\sum_i w_i`; float weights act as proportions, so a set
  with counts and the same set with normalised counts pool alike.
* ``max``  — :math:`\\max_{i : w_i > 0} x_i`; padding is filled with :math:`-\\infty`, never a
  finite sentinel, so all-negative sets pool correctly.
* An empty set (no element with :math:`w_i > 0`, or ``M == 0``) pools to 0 for every
  aggregation, with finite gradients.
* Padded positions may hold anything (NaN, ±inf): they are replaced, never multiplied by 0.
* ``sum`` and ``mean`` of float16 / bfloat16 input accumulate in float32 (autocast or not)
  and return the input's dtype, so pooling 10⁵ bf16 elements stays within bf16 rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._jagged import is_jagged
from .._validation import (
    PoolType,
    autocast_enabled,
    check_mask,
    check_set_input,
    resolve_option,
)
from ._rules import MaskedMax, active_of, empty_to_zero, mean_divisor, widens
from .segment import jagged_parts, pool_parts

__all__ = ["active_elements", "masked_pool"]


def active_elements(mask: Tensor) -> Tensor:
    """Bool ``(B, M)``: which positions belong to the set (weight > 0)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor; got {type(mask).__name__}")
    return active_of(mask)


def _pool(
    x: Tensor,
    pool: PoolType,
    mask: Tensor | None = None,
    *,
    keepdim: bool = False,
    active: Tensor | None = None,
    clean: bool = False,
) -> Tensor:
    """Unchecked pooling used by the models.

    Args:
        x: ``(B, M, D)``.
        pool: a resolved :class:`PoolType`.
        mask: ``None`` or a validated ``(B, M)`` bool/weight mask.
        active: ``active_elements(mask)`` if the caller already has it.
        clean: the caller guarantees ``x`` is exactly 0 at inactive positions.
    """
    if x.shape[1] == 0:  # zero-width sets: every pool is 0, still connected to x
        return x.sum(dim=1, keepdim=keepdim)
    if widens(pool, x.dtype):
        # Accumulate in float32 (the weighted bmm below runs with autocast off).
        wide = _pool(x.float(), pool, mask, keepdim=keepdim, active=active, clean=clean)
        return wide.to(x.dtype)
    if mask is None:  # no masking work at all on this path
        if pool is PoolType.SUM:
            return x.sum(dim=1, keepdim=keepdim)
        if pool is PoolType.MEAN:
            return x.mean(dim=1, keepdim=keepdim)
        return x.amax(dim=1, keepdim=keepdim)

    if active is None:
        active = active_of(mask)
    inside = active.unsqueeze(-1)  # (B, M, 1)

    if pool is PoolType.MAX:
        out = MaskedMax.apply(x, inside)  # (B, 1, D); -inf for empty sets
        out = empty_to_zero(out, active.any(dim=1).view(-1, 1, 1))
        return out if keepdim else out.squeeze(1)

    if not clean:
        x = x.masked_fill(~inside, 0.0)  # replace, so NaN/inf padding cannot leak
    if mask.dtype == torch.bool:
        total = x.sum(dim=1, keepdim=True)  # (B, 1, D)
        count = active.sum(dim=1).view(-1, 1, 1).to(x.dtype)
    else:
        weights = mask.to(x.dtype).unsqueeze(1)  # (B, 1, M)
        if autocast_enabled(x.device.type):  # bmm is on autocast's low-precision list
            with torch.autocast(x.device.type, enabled=False):
                total = torch.bmm(weights, x)  # (B, 1, D)
        else:
            total = torch.bmm(weights, x)  # (B, 1, D)
        count = weights.sum(dim=2, keepdim=True)  # (B, 1, 1)
    if pool is PoolType.MEAN:
        total = total / mean_divisor(count)  # empty sets: 0 / 1
    return total if keepdim else total.squeeze(1)


def masked_pool(
    x: Tensor,
    pool_type: str | PoolType = "sum",
    mask: Tensor | None = None,
    keepdim: bool = False,
) -> Tensor:
    r"""Pool a batch of padded sets over the set dimension.

    .. math::

        \mathrm{sum}(X) = \sum_i w_i x_i, \qquad
        \mathrm{mean}(X) = \frac{\sum_i w_i x_i}{\sum_i w_i}, \qquad
        \mathrm{max}(X) = \max_{i:\, w_i > 0} x_i

    with :math:`w_i = 1` when ``mask`` is ``None``, :math:`w_i \in \{0,1\}` for a bool mask
    and the given non-negative weights for a float mask. Empty sets pool to 0.

    Shapes:
        - ``x``: ``(B, M, D)``, or a jagged nested tensor ``(B, j, D)`` (packed sets)
        - ``mask``: ``(B, M)``, bool or float weights, optional; for a nested ``x`` a jagged
          ``(B, j)`` tensor with ``x``'s offsets
        - output: ``(B, D)``, or ``(B, 1, D)`` with ``keepdim=True``

    Args:
        x: a batch of ``B`` sets of ``M`` elements with ``D`` features.
        pool_type: ``"sum"``, ``"mean"`` or ``"max"``.
        mask: which elements belong to each set (bool) or their weights (float, ``>= 0``).
        keepdim: keep the pooled set dimension as size 1.

    Raises:
        ValueError: for a wrong shape, unknown ``pool_type`` or negative weights.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """
    pool = resolve_option(pool_type, PoolType, name="pool_type")
    if not isinstance(keepdim, bool):
        raise TypeError(f"keepdim must be a bool; got {keepdim!r}")
    check_set_input(x, name="x")
    check_mask(mask, x, name="mask")
    if is_jagged(x):
        return _pool_jagged(x, pool, mask, keepdim=keepdim)
    return _pool(x, pool, mask, keepdim=keepdim)


def _pool_jagged(x: Tensor, pool: PoolType, mask: Tensor | None, *, keepdim: bool) -> Tensor:
    """Unchecked pooling of a jagged nested ``x`` ``(B, j, D)`` (weights: jagged ``(B, j)``)."""
    parts = jagged_parts(x, mask)
    out = pool_parts(parts.values, pool, parts, clean=True)
    return out.unsqueeze(1) if keepdim else out
