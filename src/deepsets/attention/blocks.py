"""The Set Transformer blocks: MAB, SAB, ISAB and PMA (Lee et al. 2019,
https://arxiv.org/abs/1810.00825), for padded, weighted and packed sets."""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn

from .._validation import check_dim, check_mask, check_set_input
from ..functional.segment import jagged_like
from ..serialization import PretrainedMixin
from ._ops import (
    Packed,
    Padded,
    Tiles,
    bucket_rows,
    padded_attention,
    padded_sets,
    read_sets,
    shared_query_attention,
    split_heads,
    tile_rows,
    tiled_shared_attention,
)

__all__ = ["ISAB", "PMA", "SAB", "MultiheadAttentionBlock", "SetBlock"]

Sets = Padded | Packed


def check_flag(value: object, *, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool; got {value!r}")
    return value


def _check_heads(dim: int, heads: object, *, name: str) -> int:
    heads = check_dim(heads, name="num_heads")
    if dim % heads:
        raise ValueError(f"{name} ({dim}) must be divisible by num_heads; got num_heads={heads}")
    return heads


def zero_inactive(x: Tensor, active: Tensor | None) -> Tensor:
    return x if active is None else x.masked_fill(~active.unsqueeze(-1), 0.0)


def as_output(sets: Sets, rows: Tensor) -> Tensor:
    """Per-element output in the input's form: padded, jagged nested, or rows."""
    if isinstance(sets, Packed) and sets.like is not None:
        return jagged_like(rows, sets.like)
    return rows


class MultiheadAttentionBlock(nn.Module, PretrainedMixin):
    r"""The multihead attention block (MAB) of the Set Transformer.

    .. math::

        \mathrm{MAB}(X, Y) = \mathrm{LN}\big(H + \mathrm{rFF}(H)\big), \qquad
        H = \mathrm{LN}\big(X W^q + \mathrm{Multihead}(X W^q, Y W^k, Y W^v)\big)

    with :math:`\mathrm{Multihead}` the concatenation over heads of
    :math:`\mathrm{softmax}(Q_h K_h^\top / \sqrt{d} + \log w)\, V_h` (weights :math:`w` of
    the elements of :math:`Y`; padding has :math:`w = 0`), :math:`\mathrm{rFF}(H) =
    \mathrm{ReLU}(H W^o + b^o)` and :math:`\mathrm{LN}` a LayerNorm (identity with
    ``layer_norm=False``). Queries attend independently: the output for a query row depends
    on that row and on :math:`Y` only.

    Shapes:
        - ``x``: ``(B, Q, query_dim)`` queries
        - ``y``: ``(B, M, key_dim)`` a padded set
        - ``mask``: ``(B, M)`` bool or float weights ``>= 0`` for ``y``, optional
        - output: ``(B, Q, output_dim)``

    Args:
        query_dim: features of a query.
        key_dim: features of an element of ``y``.
        output_dim: the block's width :math:`d` (divisible by ``num_heads``).
        num_heads: attention heads.
        layer_norm: apply the two LayerNorms.

    Reference:
        Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        output_dim: int,
        *,
        num_heads: int = 4,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.query_dim = check_dim(query_dim, name="query_dim")
        self.key_dim = check_dim(key_dim, name="key_dim")
        self.output_dim = check_dim(output_dim, name="output_dim")
        self.num_heads = _check_heads(output_dim, num_heads, name="output_dim")
        self.layer_norm = check_flag(layer_norm, name="layer_norm")
        self.config: dict[str, Any] = {
            "query_dim": query_dim,
            "key_dim": key_dim,
            "output_dim": output_dim,
            "num_heads": num_heads,
            "layer_norm": layer_norm,
        }
        self.fc_q = nn.Linear(query_dim, output_dim)
        self.fc_k = nn.Linear(key_dim, output_dim)
        self.fc_v = nn.Linear(key_dim, output_dim)
        self.fc_o = nn.Linear(output_dim, output_dim)
        self.ln0: nn.Module = nn.LayerNorm(output_dim) if layer_norm else nn.Identity()
        self.ln1: nn.Module = nn.LayerNorm(output_dim) if layer_norm else nn.Identity()
        self.scale = 1.0 / math.sqrt(output_dim)

    def forward(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        check_set_input(x, self.query_dim, name="x", module=self)
        check_set_input(y, self.key_dim, name="y", module=self)
        if x.is_nested or y.is_nested:
            raise ValueError("MultiheadAttentionBlock takes padded x and y; use SAB/ISAB/PMA")
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x and y must hold the same number of sets B; got x of shape "
                f"{tuple(x.shape)} and y of shape {tuple(y.shape)}"
            )
        check_mask(mask, y)
        return self.attend_padded(x, padded_sets(y, mask))

    def _heads(self, t: Tensor) -> Tensor:
        return split_heads(t, self.num_heads)

    def _finish(self, q: Tensor, attended: Tensor) -> Tensor:
        h = self.ln0(q + attended)
        return cast(Tensor, self.ln1(h + torch.relu(self.fc_o(h))))

    def attend_padded(self, x: Tensor, sets: Padded) -> Tensor:
        """Unchecked: queries ``(B, Q, query_dim)``, or ``(Q, query_dim)`` shared by every
        set, attend over a :class:`Padded` batch. Returns ``(B, Q, output_dim)``."""
        q = self.fc_q(x)
        if q.dim() == 2:
            q = q.expand(sets.x.shape[0], -1, -1)  # (B, Q, D)
        k, v = self._heads(self.fc_k(sets.x)), self._heads(self.fc_v(sets.x))
        attended = padded_attention(self._heads(q), k, v, sets.bias, sets.nonempty, self.scale)
        return self._finish(q, attended)

    def attend_shared(self, x: Tensor, sets: Packed | Tiles) -> Tensor:
        """Unchecked: queries ``(Q, query_dim)`` shared by every set attend over packed rows
        or tiles (a softmax per set, no padding). Returns ``(S, Q, output_dim)``."""
        q = self.fc_q(x)  # (Q, D)
        k, v = self._heads(self.fc_k(sets.x)), self._heads(self.fc_v(sets.x))
        if isinstance(sets, Tiles):
            attended = tiled_shared_attention(self._heads(q), k, v, sets, self.scale)
        else:
            attended = shared_query_attention(self._heads(q), k, v, sets, self.scale)
        return self._finish(q.expand(sets.num_sets, -1, -1), attended)

    def attend_sets(self, x: Tensor, y: Tensor, tile_set: Tensor) -> Tensor:
        """Unchecked: the rows of every tile ``x (T, C, query_dim)`` attend over their set's
        elements ``y (S, K, key_dim)`` (``tile_set``: the set of every tile).
        Returns ``(T, C, output_dim)``."""
        q = self.fc_q(x)  # (T, C, D)
        k = self._heads(self.fc_k(y)).index_select(0, tile_set)  # (T, K, H, d)
        v = self._heads(self.fc_v(y)).index_select(0, tile_set)
        return self._finish(q, padded_attention(self._heads(q), k, v, None, None, self.scale))

    def extra_repr(self) -> str:
        return (
            f"query_dim={self.query_dim}, key_dim={self.key_dim}, output_dim={self.output_dim}, "
            f"num_heads={self.num_heads}, layer_norm={self.layer_norm}"
        )


class SetBlock(nn.Module, PretrainedMixin):
    """The forward shared by the set blocks: read one of the three input forms, run the
    block on it (:meth:`transform`), and answer in the input's form."""

    input_dim: int

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        offsets: Tensor | None = None,
        index: Tensor | None = None,
        num_sets: int | None = None,
    ) -> Tensor:
        sets = self.read(x, mask, offsets=offsets, index=index, num_sets=num_sets)
        return self.finish(sets, self.transform(sets))

    def read(
        self,
        x: Tensor,
        mask: Tensor | None,
        *,
        offsets: Tensor | None,
        index: Tensor | None,
        num_sets: int | None,
    ) -> Sets:
        """Validate one of the three input forms and bring it into the kernels' form."""
        return read_sets(
            x,
            mask,
            offsets=offsets,
            index=index,
            num_sets=num_sets,
            feature_dim=self.input_dim,
            module=self,
        )

    def transform(self, sets: Sets) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, sets: Sets, out: Tensor) -> Tensor:
        """Equivariant blocks answer in the input's form, padding zeroed."""
        return as_output(sets, zero_inactive(out, sets.active))


class SAB(SetBlock):
    r"""Set attention block: every element attends over its whole set.

    .. math:: \mathrm{SAB}(X) = \mathrm{MAB}(X, X)

    Permutation-equivariant; ``O(M^2)`` per set. Packed input is not padded to the batch's
    largest set: sets are grouped by size (sizes in :math:`(2^{k-1}, 2^k]` together, one
    host sync for the sizes) and each group is padded to its own largest set and run with
    a mask, so a set of ``n`` rows costs fewer than :math:`4n^2` logits per head. For
    padded input, batch sets of similar sizes (:class:`~deepsets.ragged.BucketBatchSampler`)
    or use :class:`ISAB` when sizes are skewed.

    Shapes:
        - ``x``: ``(B, M, input_dim)``, a jagged nested ``(B, j, input_dim)``, or rows
          ``(N, input_dim)`` with ``offsets (S + 1,)`` or ``index (N,)``
        - ``mask``: ``(B, M)`` / jagged ``(B, j)`` / ``(N,)``, bool or weights ``>= 0``
        - output: ``x``'s form with ``output_dim`` features, exactly 0 at padding

    Args:
        input_dim: features per element in.
        output_dim: features per element out (divisible by ``num_heads``).
        num_heads: attention heads.
        layer_norm: use the MAB's LayerNorms.

    Reference:
        Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
    """

    def __init__(
        self, input_dim: int, output_dim: int, *, num_heads: int = 4, layer_norm: bool = False
    ) -> None:
        super().__init__()
        self.mab = MultiheadAttentionBlock(
            input_dim, input_dim, output_dim, num_heads=num_heads, layer_norm=layer_norm
        )
        self.input_dim, self.output_dim = input_dim, output_dim
        self.config: dict[str, Any] = {
            "input_dim": input_dim,
            "output_dim": output_dim,
            "num_heads": num_heads,
            "layer_norm": layer_norm,
        }

    def transform(self, sets: Sets) -> Tensor:
        if isinstance(sets, Padded):
            return self.mab.attend_padded(sets.x, sets)
        buckets = bucket_rows(sets)
        if not buckets:  # no rows: the block on a set of none, for the output's width
            empty = sets.x.unsqueeze(0)  # (1, 0, input_dim)
            return self.mab.attend_padded(empty, Padded(empty, None, None, None))[0]
        parts = [self.mab.attend_padded(b.padded.x, b.padded)[b.where] for b in buckets]
        out, rows = torch.cat(parts), torch.cat([b.rows for b in buckets])  # (N, D)
        return out.new_empty(out.shape).index_copy(0, rows, out)  # back in the packed order

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, output_dim={self.output_dim}"


class ISAB(SetBlock):
    r"""Induced set attention block: ``m`` learned inducing points summarise each set, and
    every element attends over that summary.

    .. math::

        \mathrm{ISAB}_m(X) = \mathrm{MAB}(X, H), \qquad H = \mathrm{MAB}(I, X)
        \in \mathbb{R}^{m \times d}

    Permutation-equivariant; ``O(M m)`` per set. Packed input is not padded to the largest
    set: its rows are laid out in tiles of 32 rows of one set (a set of ``n`` rows takes
    ``ceil(n / 32)`` tiles); the inducing points attend over each set's tiles with one
    softmax per set (maximum and sum combined across its tiles), then every row attends over
    its set's ``m`` rows of :math:`H` in dense batched matmuls.

    Shapes:
        - ``x``: ``(B, M, input_dim)``, a jagged nested ``(B, j, input_dim)``, or rows
          ``(N, input_dim)`` with ``offsets (S + 1,)`` or ``index (N,)``
        - ``mask``: ``(B, M)`` / jagged ``(B, j)`` / ``(N,)``, bool or weights ``>= 0``
        - output: ``x``'s form with ``output_dim`` features, exactly 0 at padding

    Args:
        input_dim: features per element in.
        output_dim: features per element out (divisible by ``num_heads``).
        num_inducing: ``m``, the number of inducing points.
        num_heads: attention heads.
        layer_norm: use the MABs' LayerNorms.

    Reference:
        Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        num_inducing: int = 16,
        num_heads: int = 4,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.num_inducing = check_dim(num_inducing, name="num_inducing")
        options: dict[str, Any] = {"num_heads": num_heads, "layer_norm": layer_norm}
        self.mab0 = MultiheadAttentionBlock(output_dim, input_dim, output_dim, **options)
        self.mab1 = MultiheadAttentionBlock(input_dim, output_dim, output_dim, **options)
        self.inducing = nn.Parameter(torch.empty(num_inducing, output_dim))
        nn.init.xavier_uniform_(self.inducing)
        self.input_dim, self.output_dim = input_dim, output_dim
        self.config: dict[str, Any] = {
            "input_dim": input_dim,
            "output_dim": output_dim,
            "num_inducing": num_inducing,
            **options,
        }

    def transform(self, sets: Sets) -> Tensor:
        if isinstance(sets, Padded):
            h = self.mab0.attend_padded(self.inducing, sets)  # (B, m, D)
            return self.mab1.attend_padded(sets.x, Padded(h, None, None, None))
        tiles = tile_rows(sets)
        h = self.mab0.attend_shared(self.inducing, tiles)  # (S, m, D)
        return tiles.rows(self.mab1.attend_sets(tiles.x, h, tiles.tile_set))  # (N, D)

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, output_dim={self.output_dim}, "
            f"num_inducing={self.num_inducing}"
        )


class PMA(SetBlock):
    r"""Pooling by multihead attention: ``k`` learned seed vectors attend over each set.

    .. math:: \mathrm{PMA}_k(Z) = \mathrm{MAB}(S, Z), \qquad S \in \mathbb{R}^{k \times d}

    Permutation-invariant; ``O(M k)`` per set and no padding for packed input. An empty set
    (no element of positive weight) gives :math:`\mathrm{MAB}(S, \varnothing) =
    \mathrm{LN}(H + \mathrm{rFF}(H)),\ H = \mathrm{LN}(S W^q)`: the attention term is the
    empty sum, 0, so the output is finite and the same for every empty set.

    Usable as a Deep Sets pooling: ``pma(h, mask)`` for padded ``h (B, M, D)``, or
    ``pma(rows, weights, index=..., num_sets=S)`` for packed rows, as
    :func:`~deepsets.functional.masked_pool` / :func:`~deepsets.functional.segment_pool`
    are called; with ``flatten=True`` the output is ``(B, k·dim)`` (``pooled_dim``).

    Shapes:
        - ``x``: ``(B, M, dim)``, a jagged nested ``(B, j, dim)``, or rows ``(N, dim)``
          with ``offsets (S + 1,)`` or ``index (N,)``
        - ``mask``: ``(B, M)`` / jagged ``(B, j)`` / ``(N,)``, bool or weights ``>= 0``
        - output: ``(B, k, dim)``, or ``(B, k·dim)`` with ``flatten=True``

    Args:
        dim: features per element, in and out (divisible by ``num_heads``).
        num_seeds: ``k``, the number of seed vectors (outputs per set).
        num_heads: attention heads.
        layer_norm: use the MAB's LayerNorms.
        flatten: return ``(B, k·dim)``.

    Reference:
        Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
    """

    def __init__(
        self,
        dim: int,
        *,
        num_seeds: int = 1,
        num_heads: int = 4,
        layer_norm: bool = False,
        flatten: bool = False,
    ) -> None:
        super().__init__()
        self.num_seeds = check_dim(num_seeds, name="num_seeds")
        self.flatten = check_flag(flatten, name="flatten")
        self.mab = MultiheadAttentionBlock(
            dim, dim, dim, num_heads=num_heads, layer_norm=layer_norm
        )
        self.seeds = nn.Parameter(torch.empty(num_seeds, dim))
        nn.init.xavier_uniform_(self.seeds)
        self.input_dim = self.dim = dim
        self.pooled_dim = dim * num_seeds if flatten else dim
        self.config: dict[str, Any] = {
            "dim": dim,
            "num_seeds": num_seeds,
            "num_heads": num_heads,
            "layer_norm": layer_norm,
            "flatten": flatten,
        }

    def transform(self, sets: Sets) -> Tensor:
        if isinstance(sets, Padded):
            return self.mab.attend_padded(self.seeds, sets)  # (B, k, D)
        return self.mab.attend_shared(self.seeds, sets)  # (S, k, D)

    def finish(self, sets: Sets, out: Tensor) -> Tensor:
        return out.flatten(1) if self.flatten else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_seeds={self.num_seeds}, flatten={self.flatten}"
