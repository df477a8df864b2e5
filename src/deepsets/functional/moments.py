r"""Pooled second moments of sets: :math:`\sum_n w_n\, u_n v_n^\top` for padded and packed sets.

With :math:`u = v = \psi(x)` (e.g. :class:`~deepsets.FourierFeatures`) the pooled outer
product is the Gram matrix of a least-squares fit to the set, and with :math:`v = y` its
right-hand side: least squares, ridge regression and Gaussian posteriors are functions
:math:`\rho` of these sums, i.e. Deep Sets (Zaheer et al., Theorem 2).

The pooling rules are those of :mod:`deepsets.functional` (``_rules``): elements of weight
0 are *replaced* by 0 in both factors before any product (NaN/inf padding never reaches a
value or a gradient), float weights are multiplicities, an empty set gives 0 with finite
gradients, float16/bfloat16 accumulate in float32.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from .._jagged import as_long, is_jagged, jagged_values, segment_layout
from .._validation import (
    _shape,
    autocast_enabled,
    check_jagged_mask,
    check_like,
    check_mask,
    check_segment_input,
    check_set_input,
)
from ._rules import LOW_PRECISION, active_of
from .segment import jagged_parts

__all__ = ["pooled_outer"]


def pooled_outer(
    u: Tensor,
    v: Tensor | None = None,
    weights: Tensor | None = None,
    *,
    offsets: Tensor | None = None,
    index: Tensor | None = None,
    num_sets: int | None = None,
) -> Tensor:
    r"""Sum pooling of per-element outer products of a set.

    .. math::

        \mathrm{M}(X) = \sum_{n} w_n\, u_n v_n^\top \in \mathbb R^{D_u \times D_v}

    with :math:`w_n = 1` without ``weights`` and :math:`v = u` by default. The same numbers
    as ``masked_pool(u[..., :, None] * v[..., None, :], "sum", weights)`` (and as
    ``segment_pool`` of the flattened products for packed rows), computed for padded sets
    as one batched matrix product, without the ``(B, M, D_u, D_v)`` intermediate.

    Three input forms, as for pooling:

    - **padded** ``u (B, M, D_u)``, ``v (B, M, D_v)`` with ``weights (B, M)`` (a bool mask
      or float multiplicities);
    - **jagged nested** ``u (B, j, D_u)``, ``v (B, j, D_v)`` with ``u``'s offsets and jagged
      ``weights (B, j)``;
    - **packed rows** ``u (N, D_u)``, ``v (N, D_v)``, ``weights (N,)``, grouped by CSR
      ``offsets`` or a row ``index`` as in :func:`~deepsets.functional.segment_pool`.

    Elements of weight 0 may hold NaN/inf: they are replaced by 0 in ``u`` and ``v``, never
    multiplied. A set without an element of positive weight gives the zero matrix.

    Shapes:
        - ``u``: ``(B, M, D_u)``, jagged ``(B, j, D_u)``, or ``(N, D_u)`` with
          ``offsets`` ``(S + 1,)`` or ``index`` ``(N,)``
        - ``v``: like ``u`` with ``D_v`` features, optional (default ``u``)
        - ``weights``: ``(B, M)``, jagged ``(B, j)`` or ``(N,)``, bool or float ``>= 0``,
          optional
        - output: ``(B, D_u, D_v)`` (``(S, D_u, D_v)`` for packed rows)

    Args:
        u: the left factors.
        v: the right factors (same dtype and device as ``u``); ``None`` for ``u``.
        weights: which elements belong to the set (bool) or their multiplicities (float).
        offsets: CSR offsets of packed rows (exactly one of ``offsets`` and ``index``).
        index: the set of every packed row.
        num_sets: ``S`` for packed rows; defaults to ``len(offsets) - 1`` or
            ``index.max() + 1``.

    Raises:
        TypeError: for non-tensor or non-floating input, or ``v`` of another dtype than
            ``u``.
        ValueError: for wrong shapes, ``v`` with another batch or set structure than ``u``,
            negative or non-finite weights, or invalid ``offsets``/``index``.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """
    if offsets is not None or index is not None:
        return _pooled_outer_rows(u, v, weights, offsets=offsets, index=index, num_sets=num_sets)
    if num_sets is not None:
        raise ValueError("num_sets is for packed rows (with offsets= or index=); got it alone")
    check_set_input(u, name="u")
    if v is None:
        v = u
    else:
        _check_pair(u, v)
    check_mask(weights, u, name="weights")
    if is_jagged(u):
        return _outer_jagged(u, v, weights)
    return _outer_padded(u, v, weights)


def _check_pair(u: Tensor, v: object) -> None:
    """``v`` is a set tensor with ``u``'s batch and set structure, dtype and device."""
    check_set_input(v, name="v")
    v = cast(Tensor, v)
    if is_jagged(u) != is_jagged(v):
        raise ValueError(
            f"u and v must both be padded or both be jagged nested tensors; got shapes "
            f"{_shape(u)} and {_shape(v)}"
        )
    if is_jagged(u):
        u_offsets: Tensor = u.offsets()  # type: ignore[attr-defined]
        v_offsets: Tensor = v.offsets()  # type: ignore[attr-defined]
        same = v_offsets is u_offsets or (
            v_offsets.shape == u_offsets.shape and torch.equal(v_offsets, u_offsets)
        )
        rows_u, rows_v = jagged_values(u), jagged_values(v)
    else:
        same = v.shape[:2] == u.shape[:2]
        rows_u, rows_v = u, v
    if not same:
        raise ValueError(
            f"v must have the batch and set sizes of u, shape (B, M, D_v) with (B, M) of u "
            f"{_shape(u)}; got shape {_shape(v)}"
        )
    check_like(rows_v, rows_u, name="v", what="u")


def _outer_jagged(u: Tensor, v: Tensor, weights: Tensor | None) -> Tensor:
    """Unchecked: jagged ``u (B, j, D_u)``, ``v (B, j, D_v)``, ``weights (B, j)``."""
    if u.lengths() is not None:  # type: ignore[attr-defined]  # a view with holes
        u, v = u.contiguous(), (u.contiguous() if v is u else v.contiguous())
        weights = None if weights is None else weights.contiguous()
    if v.lengths() is not None:  # type: ignore[attr-defined]
        v = v.contiguous()
    parts = jagged_parts(u, weights)  # (N, D_u) rows, inactive ones replaced by 0
    v_rows = parts.values if v is u else _clean(jagged_values(v), parts.active)  # (N, D_v)
    offsets = as_long(u.offsets())  # type: ignore[attr-defined]
    return _outer_rows(parts.values, v_rows, parts.set_index, parts.weights, offsets=offsets)


def _clean(rows: Tensor, active: Tensor | None) -> Tensor:
    """``rows`` with inactive rows replaced by 0 (never multiplied: NaN cannot leak)."""
    return rows if active is None else rows.masked_fill(~active.unsqueeze(-1), 0.0)


def _pooled_outer_rows(
    u: Tensor,
    v: Tensor | None,
    weights: Tensor | None,
    *,
    offsets: Tensor | None,
    index: Tensor | None,
    num_sets: int | None,
) -> Tensor:
    """Checked: packed rows ``(N, D)`` grouped by ``offsets`` or ``index``."""
    sets = check_segment_input(u, offsets=offsets, index=index, num_sets=num_sets, name="u")
    if v is None:
        v = u
    else:
        if not isinstance(v, Tensor) or v.is_nested or v.dim() != 2 or v.shape[0] != u.shape[0]:
            got = f"shape {_shape(v)}" if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(
                f"v must have one row per row of u, shape (N, D_v) = ({u.shape[0]}, D_v); got {got}"
            )
        if not v.is_floating_point():
            raise TypeError(f"v must be a floating-point tensor; got dtype {v.dtype}")
        check_like(v, u, name="v", what="u")
    check_jagged_mask(weights, u.shape[0], name="weights", like=u)
    active = None if weights is None else active_of(weights)
    same = v is u
    u = _clean(u, active)
    v = u if same else _clean(v, active)
    if offsets is not None:
        row_set = segment_layout(offsets, u.shape[0]).set_index
        return _outer_rows(u, v, row_set, weights, offsets=as_long(offsets))
    return _outer_rows(u, v, as_long(cast(Tensor, index)), weights, num_sets=sets)


def _outer_rows(
    u: Tensor,
    v: Tensor,
    row_set: Tensor,
    weights: Tensor | None,
    *,
    offsets: Tensor | None = None,
    num_sets: int = 0,
) -> Tensor:
    """Unchecked: rows ``u (N, D_u)``, ``v (N, D_v)`` (0 on inactive rows) of the sets
    ``row_set (N,)`` int64 → ``(S, D_u, D_v)``; with int64 CSR ``offsets (S + 1,)`` when the
    rows are sorted by set, else ``num_sets``.

    Two kernels, chosen by the size of their intermediate (``benchmarks/moments.py``):
    scattering the rows into a zero ``(S, M, D)`` batch for one batched product, or
    summing the flattened per-row products ``(N, D_u·D_v)`` per set (``index_add_``). The
    choice reads the largest set size (one host sync), except under ``torch.compile``.
    """
    if u.dtype in LOW_PRECISION:  # products and sums in float32, the input's dtype out
        wide_u = u.float()
        wide_v = wide_u if v is u else v.float()
        wide = _outer_rows(wide_u, wide_v, row_set, weights, offsets=offsets, num_sets=num_sets)
        return wide.to(u.dtype)
    num_rows, du, dv = u.shape[0], u.shape[1], v.shape[1]
    if offsets is not None:
        num_sets = offsets.shape[0] - 1
        sizes = offsets[1:] - offsets[:-1]  # (S,)
    else:
        sizes = torch.zeros(num_sets, dtype=torch.long, device=u.device)
        sizes = sizes.index_add_(0, row_set, torch.ones_like(row_set))  # (S,)
    left = u
    if weights is not None and weights.dtype != torch.bool:
        left = u * weights.to(u.dtype).unsqueeze(-1)  # (N, D_u) multiplicities
    compiling = torch.compiler.is_compiling()
    max_size = 0 if compiling or num_sets == 0 else int(sizes.max())
    if compiling or num_sets * max_size * (du + dv) > num_rows * du * dv:
        outer = (left.unsqueeze(-1) * v.unsqueeze(-2)).flatten(1)  # (N, D_u·D_v)
        total = outer.new_zeros(num_sets, du * dv).index_add_(0, row_set, outer)
        return total.view(num_sets, du, dv)
    rows = torch.arange(num_rows, device=u.device)
    if offsets is not None:  # rows sorted by set: the position is the offset in the set
        position = rows - offsets.index_select(0, row_set)
    else:  # the rank of every row within its set, in row order
        starts = sizes.cumsum(0) - sizes  # (S,) first row of every set once sorted
        order = torch.sort(row_set, stable=True).indices
        ranks = rows - starts.index_select(0, row_set[order])
        position = torch.empty_like(ranks).index_put_((order,), ranks)
    where = (row_set, position)
    padded_u = left.new_zeros(num_sets, max_size, du).index_put(where, left)  # (S, M, D_u)
    padded_v = padded_u if v is left else v.new_zeros(num_sets, max_size, dv).index_put(where, v)
    return _gram(padded_u, padded_v)


def _gram(u: Tensor, v: Tensor) -> Tensor:
    """``u (B, M, D_u)``ᵀ ``v (B, M, D_v)`` → ``(B, D_u, D_v)``, never in autocast's dtype."""
    if autocast_enabled(u.device.type):  # bmm is on autocast's low-precision list
        with torch.autocast(u.device.type, enabled=False):
            return torch.bmm(u.transpose(1, 2), v)
    return torch.bmm(u.transpose(1, 2), v)


def _outer_padded(u: Tensor, v: Tensor, weights: Tensor | None) -> Tensor:
    """Unchecked: padded ``(B, M, D_u)``, ``(B, M, D_v)``, ``(B, M)`` → ``(B, D_u, D_v)``."""
    dtype = u.dtype
    if dtype in LOW_PRECISION:  # accumulate in float32, return the input's dtype
        wide_u = u.float()
        wide_v = wide_u if v is u else v.float()
        return _outer_padded(wide_u, wide_v, weights).to(dtype)
    if weights is not None:
        active = active_of(weights)  # (B, M)
        same = v is u
        u = _clean(u, active)
        v = u if same else _clean(v, active)
        if weights.dtype != torch.bool:
            u = u * weights.to(dtype).unsqueeze(-1)  # (B, M, D_u) multiplicities
    return _gram(u, v)  # (B, D_u, D_v)
