"""The unchecked kernels behind :mod:`deepsets.attention`, and its input forms.

Three attention patterns cover SAB, ISAB, PMA and gated pooling in every input form:

* :func:`padded_attention` — queries ``(B, Q)`` attend over a padded set ``(B, M)``;
* :func:`shared_query_attention` — a few queries shared by all sets (PMA's seeds, ISAB's
  inducing points) attend over packed rows: a segment softmax over each set's rows, then a
  segment sum, ``O(N_total · queries)`` with no padding;
* :func:`tiled_shared_attention` — the same over rows laid out in tiles of ``TILE`` rows of
  one set (:func:`tile_rows`), for ISAB: its inducing points attend over the tiles and every
  tile's rows then attend over their set's ``m`` outputs with dense batched matmuls. A set
  of ``n`` rows takes ``ceil(n / TILE)`` tiles, so the layout grows with ``N_total``, not
  with the largest set;
* :func:`bucket_rows` — packed sets grouped by size (within a factor of 2) and padded per
  group, for SAB's all-pairs attention.

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
    "Bucket",
    "Packed",
    "Padded",
    "bucket_rows",
    "padded_attention",
    "padded_sets",
    "read_sets",
    "shared_query_attention",
    "tile_rows",
    "tiled_shared_attention",
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


def padded_attention(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, nonempty: Tensor | None, scale: float
) -> Tensor:
    """Queries ``q (B, Q, H, d)`` attend over padded keys/values ``(B, M, H, d)``.

    ``bias (B, M)``: log-weights, ``-inf`` at padding; ``nonempty (B,)``. Returns
    ``(B, Q, H·d)``; a set without elements gets 0.
    """
    logits = torch.einsum("bqhd,bmhd->bhqm", q, k) * scale  # (B, H, Q, M)
    attn = _masked_softmax(logits, bias, nonempty)
    return torch.einsum("bhqm,bmhd->bqhd", attn, v).flatten(-2)  # (B, Q, H·d)


def shared_query_attention(q: Tensor, k: Tensor, v: Tensor, sets: Packed, scale: float) -> Tensor:
    """Queries ``q (Q, H, d)`` shared by every set attend over packed rows ``(N, H, d)``.

    A segment softmax over each set's rows, per head and query, then a segment sum of
    ``a_i v_i``: ``O(N·Q)`` memory, for PMA's few seeds. Returns ``(S, Q, H·d)``; a set
    without rows gets 0.
    """
    rows, heads, width = k.shape
    queries = q.shape[0]
    # One (N, H·d) x (H·d, H·Q) matmul with the queries on a block diagonal, one block per
    # head: no copies of the rows into a head-major layout.
    blocks = torch.block_diag(*(q[:, h, :].t() * scale for h in range(heads)))
    logits = k.reshape(rows, heads * width) @ blocks  # (N, H·Q)
    attn = _segment_softmax(logits, sets.set_index, sets.num_sets, sets.bias)
    weighted = attn.view(rows, heads, queries, 1) * v.unsqueeze(2)  # (N, H, Q, d)
    out = weighted.new_zeros(sets.num_sets, heads, queries, width)
    out = out.index_add_(0, sets.set_index, weighted)  # (S, H, Q, d)
    return out.transpose(1, 2).flatten(-2)  # (S, Q, H·d)


class Tiles(NamedTuple):
    """Packed rows laid out in tiles of ``C`` rows of one set each (see :func:`tile_rows`)."""

    x: Tensor  # (T, C, D), 0 in empty slots and on rows of weight 0
    bias: Tensor  # (T, C) log-weights, -inf in empty slots and on rows of weight 0
    active: Tensor  # (T, C) bool
    tile_set: Tensor  # (T,) set of every tile
    num_sets: int
    row_tile: Tensor  # (N,) tile of every row
    row_slot: Tensor  # (N,) slot of every row in its tile

    def rows(self, t: Tensor) -> Tensor:
        """``(T, C, ...) -> (N, ...)``: the rows back in their packed order."""
        return t[self.row_tile, self.row_slot]


#: Rows per tile: at most ``TILE - 1`` empty slots per set (not ``M_max - n`` as padding).
TILE = 32


def _positions(sets: Packed) -> tuple[Tensor, Tensor]:
    """``(S,)`` set sizes and the ``(N,)`` position of every row within its set."""
    rows = sets.x.shape[0]
    sizes = torch.zeros(sets.num_sets, dtype=torch.long, device=sets.x.device)
    sizes = sizes.index_add_(0, sets.set_index, torch.ones_like(sets.set_index))
    starts = torch.cumsum(sizes, 0) - sizes  # (S,) first row of every set, rows sorted by set
    order = torch.argsort(sets.set_index, stable=True)
    position = torch.empty_like(sets.set_index)
    ranks = torch.arange(rows, device=sets.x.device)
    position[order] = ranks - starts.index_select(0, sets.set_index[order])
    return sizes, position


def _scatter_rows(sets: Packed, shape: tuple[int, int], where: tuple[Tensor, Tensor]) -> Padded:
    """Rows scattered into a zero ``(*shape, D)`` grid at ``where``; the rest is padding."""
    x = sets.x.new_zeros(*shape, sets.x.shape[1]).index_put(where, sets.x)
    bias = x.new_full(shape, float("-inf"))
    row_bias = torch.zeros_like(sets.set_index, dtype=x.dtype) if sets.bias is None else sets.bias
    bias = bias.index_put(where, row_bias)
    active = bias > float("-inf")
    return Padded(x, bias, active, active.any(dim=-1))


def tile_rows(sets: Packed, size: int = TILE) -> Tiles:
    """Lay packed rows out in tiles of ``size`` rows of one set (one host sync: the number
    of tiles). A set of ``n`` rows takes ``ceil(n / size)`` tiles, so the layout holds at
    most ``N + S·(size - 1)`` slots, against ``S · M_max`` for padding to the largest set."""
    sizes, position = _positions(sets)
    per_set = torch.div(sizes + size - 1, size, rounding_mode="floor")  # (S,)
    first = torch.cumsum(per_set, 0) - per_set
    count = int(per_set.sum().item())
    tile_set = torch.repeat_interleave(
        torch.arange(sets.num_sets, device=sizes.device), per_set, output_size=count
    )
    row_tile = first.index_select(0, sets.set_index) + torch.div(
        position, size, rounding_mode="floor"
    )
    row_slot = position % size
    grid = _scatter_rows(sets, (count, size), (row_tile, row_slot))
    bias, active = cast(Tensor, grid.bias), cast(Tensor, grid.active)  # always set here
    return Tiles(grid.x, bias, active, tile_set, sets.num_sets, row_tile, row_slot)


def tiled_shared_attention(q: Tensor, k: Tensor, v: Tensor, tiles: Tiles, scale: float) -> Tensor:
    """Queries ``q (Q, H, d)`` shared by every set attend over tiled keys/values
    ``(T, C, H, d)``: a softmax over each set's rows, combined across its tiles by a segment
    max and sum over tiles. Returns ``(S, Q, H·d)``; a set without rows gets 0."""
    logits = torch.einsum("tchd,qhd->thqc", k, q) * scale  # (T, H, Q, C)
    bias = tiles.bias[:, None, None, :]  # (T, 1, 1, C)
    logits = logits.masked_fill(bias == float("-inf"), 0.0) + bias  # NaN cannot get through
    heads, queries = logits.shape[1], logits.shape[2]
    with torch.no_grad():  # a constant shift per set: needs no gradient
        peak = logits.new_full((tiles.num_sets, heads, queries), float("-inf"))
        index = tiles.tile_set.view(-1, 1, 1).expand(-1, heads, queries)
        peak = peak.scatter_reduce(0, index, logits.amax(dim=-1), "amax", include_self=True)
        peak = peak.masked_fill(peak == float("-inf"), 0.0)  # sets without rows
    scores = (logits - peak.index_select(0, tiles.tile_set).unsqueeze(-1)).exp()
    total = logits.new_zeros(tiles.num_sets, heads, queries)
    total = total.index_add_(0, tiles.tile_set, scores.sum(dim=-1))  # (S, H, Q)
    total = torch.where(total > 0, total, torch.ones_like(total))
    partial = torch.einsum("thqc,tchd->thqd", scores, v)  # (T, H, Q, d)
    out = partial.new_zeros(tiles.num_sets, heads, queries, partial.shape[-1])
    out = out.index_add_(0, tiles.tile_set, partial) / total.unsqueeze(-1)  # (S, H, Q, d)
    return out.transpose(1, 2).flatten(-2)  # (S, Q, H·d)


class Bucket(NamedTuple):
    """The sets of one size bucket, padded to the bucket's largest set."""

    padded: Padded  # (S_b, M_b, D)
    rows: Tensor  # (N_b,) the bucket's rows in the packed order
    where: tuple[Tensor, Tensor]  # (N_b,) set slot and position of every row in the grid


def bucket_rows(sets: Packed) -> list[Bucket]:
    """Group packed sets by size — sizes in ``(2^{k-1}, 2^k]`` share a bucket — and pad each
    bucket to its own largest set (one host sync: the set sizes).

    Padding a set of ``n`` rows to its bucket costs fewer than ``2n`` slots, so all-pairs
    attention computes fewer than ``4 Σ_s n_s²`` logits per head, against ``S · M_max²``
    when every set is padded to the largest. Sets without rows give no rows and no bucket.
    """
    sizes, position = _positions(sets)
    size_list = sizes.tolist()
    level = [max(n - 1, 0).bit_length() for n in size_list]  # ceil(log2 n); 0 for n <= 1
    members: dict[int, list[int]] = {}
    for s, n in enumerate(size_list):
        if n:
            members.setdefault(level[s], []).append(s)
    device = sets.x.device
    set_level = torch.tensor(level, dtype=torch.long, device=device)
    row_level = set_level.index_select(0, sets.set_index)
    order = torch.argsort(row_level, stable=True)  # the rows, bucket after bucket
    slot = torch.zeros(sets.num_sets, dtype=torch.long, device=device)
    buckets, start = [], 0
    for k in sorted(members):
        ids = members[k]
        count = sum(size_list[s] for s in ids)
        rows = order[start : start + count]
        start += count
        slot[ids] = torch.arange(len(ids), device=device)
        where = (slot.index_select(0, sets.set_index[rows]), position[rows])
        mine = Packed(
            sets.x[rows],
            sets.set_index[rows],
            len(ids),
            None if sets.bias is None else sets.bias[rows],
            None,
            None,
        )
        longest = max(size_list[s] for s in ids)
        buckets.append(Bucket(_scatter_rows(mine, (len(ids), longest), where), rows, where))
    return buckets
