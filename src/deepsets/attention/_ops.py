"""The unchecked kernels behind :mod:`deepsets.attention`, and its input forms.

Three attention patterns cover SAB, ISAB, PMA and gated pooling in every input form:

* :func:`padded_attention` — queries ``(B, Q)`` attend over a padded set ``(B, M)``;
* :func:`shared_query_attention` — a few queries shared by all sets (PMA's seeds, ISAB's
  inducing points) attend over packed rows: a segment softmax over each set's rows, then a
  segment sum, ``O(N_total · queries)`` with no padding;
* :func:`rows_to_set_attention` — every packed row attends over its own set's few keys
  (ISAB's second half), ``O(N_total · keys)``.

Tensors are split into heads as ``(..., H, d)``: head ``h`` holds features
``[h·d, (h+1)·d)``, as in the Set Transformer authors' code. Inputs are trusted: the public
modules validate them once.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
from torch import Tensor

from .._jagged import as_long, is_jagged, segment_layout
from .._validation import check_jagged_mask, check_mask, check_segment_input, check_set_input
from ..functional.padded import active_elements
from ..functional.segment import jagged_parts
from ..functional.softmax import _masked_softmax, _segment_softmax, log_multiplicity

__all__ = [
    "Packed",
    "Padded",
    "padded_attention",
    "padded_sets",
    "read_sets",
    "rows_to_set_attention",
    "shared_query_attention",
]


class Padded(NamedTuple):
    """A padded batch with its padding replaced by 0."""

    x: Tensor  # (B, M, D), 0 at inactive positions
    bias: Tensor | None  # (B, M) log-weights, -inf at padding; None: every element counts 1
    active: Tensor | None  # (B, M) bool
    nonempty: Tensor | None  # (B,) bool: the set has an element of positive weight


class Packed(NamedTuple):
    """Packed rows with their set structure; rows of weight 0 replaced by 0."""

    x: Tensor  # (N, D)
    set_index: Tensor  # (N,) int64 set of every row
    num_sets: int
    bias: Tensor | None  # (N,) log-weights, -inf on rows of weight 0
    active: Tensor | None  # (N,) bool
    like: Tensor | None  # the jagged input, to give an equivariant output its structure


def padded_sets(x: Tensor, mask: Tensor | None) -> Padded:
    """Unchecked: a padded batch and its mask in the kernels' form."""
    if mask is None:
        return Padded(x, None, None, None)
    active = active_elements(mask)
    x = x.masked_fill(~active.unsqueeze(-1), 0.0)  # replace: NaN/inf padding cannot leak
    return Padded(x, log_multiplicity(mask, x.dtype), active, active.any(dim=1))


def _packed(
    x: Tensor, index: Tensor, num_sets: int, weights: Tensor | None, like: Tensor | None
) -> Packed:
    if weights is None:
        return Packed(x, index, num_sets, None, None, like)
    active = weights if weights.dtype == torch.bool else weights > 0
    x = x.masked_fill(~active.unsqueeze(-1), 0.0)
    return Packed(x, index, num_sets, log_multiplicity(weights, x.dtype), active, like)


def read_sets(
    x: object,
    mask: Tensor | None,
    *,
    offsets: Tensor | None,
    index: Tensor | None,
    num_sets: int | None,
    feature_dim: int,
    module: torch.nn.Module,
) -> Padded | Packed:
    """Validate one of the three input forms and bring it into a kernel's form.

    * padded ``x (B, M, D)`` with an optional ``(B, M)`` bool/weight ``mask``;
    * a jagged nested ``x (B, j, D)`` with optional jagged ``(B, j)`` weights;
    * rows ``x (N, D)`` with CSR ``offsets`` or a row ``index`` and optional ``(N,)`` weights.
    """
    if offsets is None and index is None:
        if num_sets is not None:
            raise ValueError("num_sets is only used with offsets= or index= (packed rows)")
        check_set_input(x, feature_dim, module=module)
        x = cast(Tensor, x)
        check_mask(mask, x)
        if not is_jagged(x):
            return padded_sets(x, mask)
        parts = jagged_parts(x, mask, clean=False)
        return _packed(parts.values, parts.set_index, parts.num_sets, parts.weights, x)
    if isinstance(x, Tensor) and x.dim() == 2:  # the rows form: checked like segment_pool
        check_set_input(x.unsqueeze(0), feature_dim, module=module)
    sets = check_segment_input(x, offsets=offsets, index=index, num_sets=num_sets, name="x")
    x = cast(Tensor, x)
    check_jagged_mask(mask, x.shape[0], name="mask", like=x)
    if offsets is not None:
        index = segment_layout(offsets, x.shape[0]).set_index
    return _packed(x, as_long(cast(Tensor, index)), sets, mask, None)


def split_heads(t: Tensor, heads: int) -> Tensor:
    """``(..., H·d) -> (..., H, d)``."""
    return t.unflatten(-1, (heads, t.shape[-1] // heads))


def padded_attention(q: Tensor, k: Tensor, v: Tensor, sets: Padded, scale: float) -> Tensor:
    """Queries ``q (B, Q, H, d)`` attend over the padded keys/values ``(B, M, H, d)``.

    Returns ``(B, Q, H·d)``; a set without elements gets 0.
    """
    logits = torch.einsum("bqhd,bmhd->bhqm", q, k) * scale  # (B, H, Q, M)
    attn = _masked_softmax(logits, sets.bias, sets.nonempty)
    return torch.einsum("bhqm,bmhd->bqhd", attn, v).flatten(-2)  # (B, Q, H·d)


def shared_query_attention(q: Tensor, k: Tensor, v: Tensor, sets: Packed, scale: float) -> Tensor:
    """Queries ``q (Q, H, d)`` shared by every set attend over packed rows ``(N, H, d)``.

    A segment softmax over each set's rows, per head and query, then a segment sum of
    ``a_i v_i``. Returns ``(S, Q, H·d)``; a set without rows gets 0.
    """
    rows, heads, width = k.shape
    queries = q.shape[0]
    logits = torch.einsum("nhd,qhd->nhq", k, q) * scale  # (N, H, Q)
    attn = _segment_softmax(
        logits.reshape(rows, heads * queries), sets.set_index, sets.num_sets, sets.bias
    )
    weighted = attn.view(rows, heads, queries, 1) * v.unsqueeze(2)  # (N, H, Q, d)
    out = weighted.new_zeros(sets.num_sets, heads, queries, width)
    out = out.index_add_(0, sets.set_index, weighted)  # (S, H, Q, d)
    return out.transpose(1, 2).flatten(-2)  # (S, Q, H·d)


def rows_to_set_attention(q: Tensor, k: Tensor, v: Tensor, index: Tensor, scale: float) -> Tensor:
    """Every packed row ``q (N, H, d)`` attends over its set's keys/values ``(S, K, H, d)``.

    Returns ``(N, H·d)``.
    """
    k_rows = k.index_select(0, index)  # (N, K, H, d)
    logits = torch.einsum("nhd,nkhd->nhk", q, k_rows) * scale  # (N, H, K)
    attn = torch.softmax(logits, dim=-1)
    return torch.einsum("nhk,nkhd->nhd", attn, v.index_select(0, index)).flatten(-2)


def pad_rows(sets: Packed) -> tuple[Padded, Tensor]:
    """Pad packed rows into ``(S, M_max, D)`` (one host sync for ``M_max``).

    Returns the padded batch and the ``(N,)`` position of every row in its set, so that
    ``padded.x[sets.set_index, position]`` gives the rows back.
    """
    rows = sets.x.shape[0]
    sizes = torch.zeros(sets.num_sets, dtype=torch.long, device=sets.x.device)
    sizes = sizes.index_add_(0, sets.set_index, torch.ones_like(sets.set_index))
    starts = torch.cumsum(sizes, 0) - sizes  # (S,) for rows sorted by set
    order = torch.argsort(sets.set_index, stable=True)
    position = torch.empty_like(sets.set_index)
    position[order] = torch.arange(rows, device=sets.x.device) - starts.index_select(
        0, sets.set_index[order]
    )
    longest = int(sizes.max().item()) if sets.num_sets else 0
    x = sets.x.new_zeros(sets.num_sets, longest, sets.x.shape[1])
    x = x.index_put((sets.set_index, position), sets.x)
    bias = x.new_full((sets.num_sets, longest), float("-inf"))
    row_bias = torch.zeros(rows, dtype=x.dtype, device=x.device) if sets.bias is None else sets.bias
    bias = bias.index_put((sets.set_index, position), row_bias)
    active = bias > float("-inf")
    return Padded(x, bias, active, active.any(dim=1)), position
