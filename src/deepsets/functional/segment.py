r"""Pooling of packed sets: ``(N_total, D)`` rows split into sets by CSR offsets or an index.

A batch of sets of different sizes is stored without padding as the concatenation of
their rows, ``values`` of shape ``(N_total, D)``, plus either

* ``offsets`` ``(S + 1,)`` — set ``s`` is ``values[offsets[s]:offsets[s + 1]]`` (CSR, the
  layout of ``torch.nested`` jagged tensors and of PyG's ``ptr``), or
* ``index`` ``(N_total,)`` — row ``i`` belongs to set ``index[i]`` (PyG's ``batch``).

The semantics are those of :func:`~deepsets.functional.masked_pool` (−∞-correct max,
empty sets pool to 0 with finite gradients, float weights are multiplicities for sum and
proportions for mean, rows of weight 0 may hold NaN/inf and never leak, float16/bfloat16
sum and mean accumulate in float32).

Kernels: sum and mean use one ``index_add_``; max a ``scatter_reduce`` forward with a
hand-written backward (``_rules.IndexMax``). The timings behind the choice are in the
docs' Architecture Decisions page.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
from torch import Tensor

from .._jagged import as_long, jagged_values, segment_layout
from .._validation import (
    PoolType,
    check_jagged_mask,
    check_segment_input,
    resolve_option,
)
from ._rules import IndexMax, active_of, empty_to_zero, mean_divisor, widens

__all__ = ["segment_pool"]


class JaggedParts(NamedTuple):
    """The flat view of a batch of packed sets (see :func:`jagged_parts`)."""

    values: Tensor  # (N, D) rows, inactive rows (weight 0) replaced by 0
    divisor: Tensor  # (S, 1) int64 set sizes, empty sets as 1
    set_index: Tensor  # (N,) int64 set of every row
    num_sets: int
    weights: Tensor | None  # (N,) float weights or bool mask, or None
    active: Tensor | None  # (N,) bool, ``weights > 0``, or None


def _offsets(t: Tensor) -> Tensor:
    return t.offsets()  # type: ignore[attr-defined]


def _lengths(t: Tensor) -> Tensor | None:
    return t.lengths()  # type: ignore[attr-defined]


def jagged_parts(x: Tensor, mask: Tensor | None = None, *, clean: bool = True) -> JaggedParts:
    """Split a jagged nested tensor ``(B, j, D)`` (and its jagged weights) into flat parts.

    With a mask and ``clean=True`` the rows of weight 0 are replaced by 0 (never multiplied),
    so NaN/inf in them cannot reach φ or a gradient. Inputs are assumed validated.
    """
    if _lengths(x) is not None:  # a view with holes (e.g. from narrow): compact it first
        x = x.contiguous()
        if mask is not None:
            mask = mask.contiguous()
    values = jagged_values(x)
    offsets = _offsets(x)
    num_sets = offsets.shape[0] - 1
    index, divisor = segment_layout(offsets, values.shape[0])
    if mask is None:
        return JaggedParts(values, divisor, index, num_sets, None, None)
    weights = jagged_values(mask).reshape(-1)
    active = active_of(weights)
    if clean:
        values = values.masked_fill(~active.unsqueeze(-1), 0.0)
    return JaggedParts(values, divisor, index, num_sets, weights, active)


def jagged_like(values: Tensor, like: Tensor) -> Tensor:
    """A jagged nested tensor with the rows ``values`` and the structure of ``like``."""
    if _lengths(like) is not None:
        like = like.contiguous()
    return torch.nested.nested_tensor_from_jagged(values, _offsets(like))


def pool_parts(rows: Tensor, pool: PoolType, parts: JaggedParts, *, clean: bool = False) -> Tensor:
    """Unchecked: pool rows ``(N, L)`` laid out as ``parts`` into ``(S, L)``."""
    return _segment_pool(
        rows,
        pool,
        parts.set_index,
        parts.num_sets,
        divisor=parts.divisor,
        weights=parts.weights,
        active=parts.active,
        clean=clean,
    )


def _segment_pool(
    values: Tensor,
    pool: PoolType,
    index: Tensor,
    num_sets: int,
    *,
    divisor: Tensor | None = None,
    weights: Tensor | None = None,
    active: Tensor | None = None,
    clean: bool = False,
) -> Tensor:
    """Unchecked segment pooling used by the models and the streaming state.

    Args:
        values: ``(N, D)``.
        pool: a resolved :class:`PoolType`.
        index: ``(N,)`` int64 set of every row.
        num_sets: ``S``.
        divisor: ``(S, 1)`` set sizes with empty sets as 1, if the caller has them (from
            :func:`~deepsets._jagged.segment_layout`), for an unweighted mean.
        weights: ``(N,)`` bool or float weights, or ``None``.
        active: ``weights > 0`` if the caller has it.
        clean: the caller guarantees ``values`` is 0 on rows of weight 0.

    Returns:
        ``(S, D)``.
    """
    if widens(pool, values.dtype):
        wide = _segment_pool(
            values.float(),
            pool,
            index,
            num_sets,
            divisor=divisor,
            weights=weights,
            active=active,
            clean=clean,
        )
        return wide.to(values.dtype)
    width = values.shape[1]
    if weights is not None and active is None:
        active = active_of(weights)

    if pool is PoolType.MAX:
        out = IndexMax.apply(values, index, num_sets, active)
        if active is None:  # empty sets are rows scatter_reduce never touched: already 0
            return out
        hits = torch.zeros(num_sets, dtype=torch.int32, device=values.device)
        nonempty = hits.index_add_(0, index, active.to(torch.int32)).unsqueeze(-1) > 0
        return empty_to_zero(out, nonempty)

    if active is not None and not clean:
        values = values.masked_fill(~active.unsqueeze(-1), 0.0)  # replace: NaN cannot leak
    if weights is not None and weights.dtype != torch.bool:
        w = weights.to(values.dtype)
        values = values * w.unsqueeze(-1)
    total = values.new_zeros(num_sets, width).index_add_(0, index, values)
    if pool is PoolType.SUM:
        return total
    # Empty sets have total == 0 and divisor 1 (the rule of _rules.mean_divisor).
    if weights is None:  # integer counts: clamping at 1 only touches empty sets
        if divisor is None:
            count = torch.zeros(num_sets, dtype=values.dtype, device=values.device)
            count = count.index_add_(0, index, torch.ones_like(index, dtype=values.dtype))
            divisor = count.clamp_(min=1).unsqueeze(-1)
        return total / divisor  # an int64 divisor promotes to values' dtype
    w = weights.to(values.dtype)  # a bool mask becomes 0/1 weights
    count = torch.zeros(num_sets, dtype=values.dtype, device=values.device)
    count = count.index_add_(0, index, w).unsqueeze(-1)  # real weights: may lie in (0, 1)
    return total / mean_divisor(count)


def segment_pool(
    values: Tensor,
    pool_type: str | PoolType = "sum",
    *,
    offsets: Tensor | None = None,
    index: Tensor | None = None,
    weights: Tensor | None = None,
    num_sets: int | None = None,
) -> Tensor:
    r"""Pool packed sets: rows ``(N_total, D)`` grouped by CSR ``offsets`` or a row ``index``.

    .. math::

        \mathrm{sum}_s = \sum_{i \in s} w_i x_i, \qquad
        \mathrm{mean}_s = \frac{\sum_{i \in s} w_i x_i}{\sum_{i \in s} w_i}, \qquad
        \mathrm{max}_s = \max_{i \in s,\, w_i > 0} x_i

    with :math:`w_i = 1` without ``weights``. Empty sets (no row, or only rows of weight 0)
    pool to 0. The same numbers as :func:`~deepsets.functional.masked_pool` on the padded
    batch, and as PyG's ``global_{add,mean,max}_pool(x, batch, size)`` for
    ``index=batch, num_sets=size``.

    Shapes:
        - ``values``: ``(N_total, D)``
        - ``offsets``: ``(S + 1,)`` integer, non-decreasing, ``offsets[0] = 0``,
          ``offsets[-1] = N_total`` — or
        - ``index``: ``(N_total,)`` integer in ``[0, S)``, any order
        - ``weights``: ``(N_total,)`` bool or float ``>= 0``, optional
        - output: ``(S, D)``

    Args:
        values: the rows of all sets, concatenated.
        pool_type: ``"sum"``, ``"mean"`` or ``"max"``.
        offsets: CSR offsets (exactly one of ``offsets`` and ``index``).
        index: the set of every row.
        weights: per-row multiplicities (sum) or proportions (mean); 0 marks padding.
        num_sets: ``S``; defaults to ``len(offsets) - 1`` or ``index.max() + 1``.

    Raises:
        ValueError: for wrong shapes, both or neither of ``offsets``/``index``, offsets that
            are not a valid CSR split of ``values``, indices out of range, negative or
            non-finite weights, or an unknown ``pool_type``.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114;
        Fey & Lenssen, *PyTorch Geometric*, https://arxiv.org/abs/1903.02428
    """
    pool = resolve_option(pool_type, PoolType, name="pool_type")
    num_sets = check_segment_input(values, offsets=offsets, index=index, num_sets=num_sets)
    check_jagged_mask(weights, values.shape[0], name="weights", like=values)
    divisor = None
    if offsets is not None:
        index, divisor = segment_layout(offsets, values.shape[0])
    rows_set = as_long(cast(Tensor, index))  # check_segment_input: offsets or index is given
    return _segment_pool(values, pool, rows_set, num_sets, divisor=divisor, weights=weights)
