r"""Streaming and mergeable pooling: sets too large to hold at once, or spread over workers.

Sum, mean and max pooling are reductions, so a set can be pooled chunk by chunk and the
partial results combined in any order:

.. math::

    \mathrm{sum}(A \cup B) = \mathrm{sum}(A) + \mathrm{sum}(B), \qquad
    \mathrm{mean}(A \cup B) = \frac{S_A + S_B}{W_A + W_B}, \qquad
    \mathrm{max}(A \cup B) = \max(\mathrm{max}(A), \mathrm{max}(B))

where :math:`S = \sum_i w_i x_i` and :math:`W = \sum_i w_i`. A :class:`PoolingState` keeps
:math:`S`, :math:`W` (or the running max and the number of elements seen): ``update`` adds a
chunk, ``merge`` adds another state, ``all_reduce`` merges the states of all processes of a
``torch.distributed`` group (one ``all_reduce`` each of the sum and the count, and one of the
max), and ``result`` gives the pooled vector with the semantics of
:func:`~deepsets.functional.masked_pool` (empty sets pool to 0, weights are multiplicities
for sum and proportions for mean, max is over elements of weight > 0).

Memory is bounded by one chunk: the state is ``O(num_sets · D)``.
:meth:`deepsets.DeepSetsInvariant.forward_chunks` runs φ chunk by chunk and ρ once.

Example:
    >>> import torch
    >>> from deepsets.streaming import PoolingState, chunked
    >>> x = torch.randn(10_000, 4)
    >>> state = PoolingState("mean")
    >>> for rows in chunked(x, 1024):
    ...     _ = state.update(rows)
    >>> torch.allclose(state.result()[0], x.mean(0), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeAlias

import torch
from torch import Tensor

from ._validation import PoolType, check_dim, check_jagged_mask, check_segment_input
from ._validation import resolve_option as _resolve
from .functional.segment import _segment_pool

__all__ = ["Chunk", "PoolingState", "chunked"]

#: One chunk of a set: rows ``(n, D)``, or rows with their weights ``(n,)``.
Chunk: TypeAlias = "Tensor | tuple[Tensor, Tensor]"

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def chunked(x: Tensor, chunk_size: int) -> Iterator[Tensor]:
    r"""Views of ``x`` ``(N, D)`` in consecutive row blocks of at most ``chunk_size`` rows.

    .. math:: X_k = x[k c : \min((k + 1) c, N)], \qquad k = 0, \dots, \lceil N / c \rceil - 1

    Works on anything sliceable along rows (a tensor, a memory-mapped tensor from
    ``torch.from_file`` ...); no copy is made.

    Shapes:
        ``x``: ``(N, D)`` → chunks ``(≤ chunk_size, D)``
    """
    size = check_dim(chunk_size, name="chunk_size")
    for start in range(0, x.shape[0], size):
        yield x[start : start + size]


class PoolingState:
    r"""A mergeable sum / mean / max pooling of ``num_sets`` sets fed in chunks.

    .. math::

        S_s = \sum_{i \in s} w_i x_i, \quad W_s = \sum_{i \in s} w_i, \quad
        M_s = \max_{i \in s,\, w_i > 0} x_i; \qquad
        \mathrm{result}_s = S_s,\ S_s / W_s \text{ or } M_s \ (0 \text{ if } s \text{ is empty})

    Sums accumulate in float32 at least (float16/bfloat16 chunks) and the result has the
    dtype of the first chunk. With autograd on, the result is differentiable with respect to
    every chunk (and keeps their graphs alive); stream under ``torch.no_grad()`` to keep
    memory bounded, or train through :meth:`deepsets.DeepSetsInvariant.forward_chunks`
    with ``checkpoint=True`` or :meth:`deepsets.DeepSetsInvariant.backward_chunks`.

    Shapes:
        - ``update(values, weights, index=...)``: ``values (n, D)``, ``weights (n,)``
          optional, ``index (n,)`` in ``[0, num_sets)`` (optional when ``num_sets == 1``)
        - ``result()``: ``(num_sets, D)``

    Args:
        pool_type: ``"sum"``, ``"mean"`` or ``"max"``.
        num_sets: how many sets the state pools at once (rows are assigned by ``index``).

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    def __init__(self, pool_type: str | PoolType = "sum", num_sets: int = 1) -> None:
        self.pool = _resolve(pool_type, PoolType, name="pool_type")
        self.num_sets = check_dim(num_sets, name="num_sets")
        self.value: Tensor | None = None  # (S, D): S_s, or M_s for max
        self.count: Tensor | None = None  # (S,): W_s, or the number of rows of weight > 0
        self.dtype: torch.dtype | None = None  # dtype of the result

    @classmethod
    def from_partial(
        cls, pool_type: str | PoolType, value: Tensor, count: Tensor, *, dtype: torch.dtype
    ) -> PoolingState:
        """A state of ``value.shape[0]`` sets holding the given partial pooling.

        Args:
            pool_type: ``"sum"``, ``"mean"`` or ``"max"``.
            value: ``(S, D)``: the weighted sums, or the running max (``-inf`` where empty).
            count: ``(S,)``: the total weight, or the number of rows of weight > 0 for max.
            dtype: the dtype :meth:`result` returns.
        """
        if value.dim() != 2 or count.shape != value.shape[:1]:
            raise ValueError(
                f"value must have shape (S, D) and count shape (S,); got "
                f"{tuple(value.shape)} and {tuple(count.shape)}"
            )
        state = cls(pool_type, num_sets=value.shape[0])
        state.value, state.count, state.dtype = value, count, dtype
        return state

    @property
    def pool_type(self) -> str:
        return self.pool.value

    @property
    def empty(self) -> bool:
        """Whether no chunk has been added or merged yet."""
        return self.value is None

    def _init(self, width: int, dtype: torch.dtype, device: torch.device) -> None:
        wide = torch.float32 if dtype in _LOW_PRECISION else dtype
        if self.pool is PoolType.MAX:
            self.value = torch.full(
                (self.num_sets, width), float("-inf"), dtype=dtype, device=device
            )
        else:
            self.value = torch.zeros(self.num_sets, width, dtype=wide, device=device)
        self.count = torch.zeros(self.num_sets, dtype=wide, device=device)
        self.dtype = dtype

    def update(
        self, values: Tensor, weights: Tensor | None = None, *, index: Tensor | None = None
    ) -> PoolingState:
        """Add a chunk of rows (with optional weights, 0 = ignore) and return ``self``."""
        if not isinstance(values, Tensor) or values.dim() != 2:
            shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise ValueError(f"values must be a (n, D) tensor of rows; got {shape}")
        if index is None:
            if self.num_sets != 1:
                raise ValueError(
                    f"index (the set of every row) is required when num_sets={self.num_sets}"
                )
            index = torch.zeros(values.shape[0], dtype=torch.long, device=values.device)
        else:
            check_segment_input(values, offsets=None, index=index, num_sets=self.num_sets)
        check_jagged_mask(weights, values.shape[0], name="weights", like=values)
        if self.value is None:
            self._init(values.shape[1], values.dtype, values.device)
        if self.value is None or self.count is None:  # pragma: no cover - set by _init
            raise RuntimeError("PoolingState was not initialised")
        if values.shape[1] != self.value.shape[1]:
            raise ValueError(
                f"values must have {self.value.shape[1]} features like the earlier chunks; "
                f"got shape {tuple(values.shape)}"
            )
        index = index.to(torch.long)
        active = None
        if weights is not None:
            active = weights if weights.dtype == torch.bool else weights > 0
        if self.pool is PoolType.MAX:
            part = _segment_pool(values, self.pool, index, self.num_sets, weights=weights)
        else:  # sum and mean both accumulate the weighted sum (in float32 at least)
            wide = values.to(self.value.dtype)
            part = _segment_pool(wide, PoolType.SUM, index, self.num_sets, weights=weights)
        if self.pool is PoolType.MAX:
            counted = (
                torch.ones_like(index, dtype=self.count.dtype)
                if active is None
                else active.to(self.count.dtype)
            )
            seen = torch.zeros_like(self.count).index_add_(0, index, counted)
            # ``part`` is 0 for sets this chunk did not touch: keep the running max there.
            part = torch.where(seen.unsqueeze(-1) > 0, part, torch.full_like(part, float("-inf")))
            self.value = torch.maximum(self.value, part.to(self.value.dtype))
        else:
            if weights is None:
                counted = torch.ones_like(index, dtype=self.count.dtype)
            else:  # bool weights count 0/1
                counted = weights.to(self.count.dtype)
            seen = torch.zeros_like(self.count).index_add_(0, index, counted)
            self.value = self.value + part
        self.count = self.count + seen
        return self

    def merge(self, other: PoolingState) -> PoolingState:
        """Fold ``other`` (a state of the same pooling and sets) into ``self``; return ``self``.

        Merging is commutative and associative (up to float rounding for sum and mean).
        """
        if not isinstance(other, PoolingState):
            raise TypeError(f"other must be a PoolingState; got {type(other).__name__}")
        if other.pool is not self.pool or other.num_sets != self.num_sets:
            raise ValueError(
                f"cannot merge a {other.pool_type!r} state of {other.num_sets} sets into a "
                f"{self.pool_type!r} state of {self.num_sets} sets"
            )
        if other.value is None or other.count is None:
            return self
        if self.value is None or self.count is None:
            self.value, self.count, self.dtype = other.value, other.count, other.dtype
            return self
        if other.value.shape != self.value.shape:
            raise ValueError(
                f"cannot merge states of shape {tuple(other.value.shape)} and "
                f"{tuple(self.value.shape)}"
            )
        if self.pool is PoolType.MAX:
            self.value = torch.maximum(self.value, other.value)
        else:
            self.value = self.value + other.value
        self.count = self.count + other.count
        return self

    def all_reduce(self, group: Any = None) -> PoolingState:
        """Merge the states of every process of a ``torch.distributed`` group, in place.

        Every process must have fed at least one chunk (so all know the feature width);
        afterwards every process holds the pooling of the union of all their chunks.
        """
        import torch.distributed as dist

        if self.value is None or self.count is None:
            raise ValueError(
                "all_reduce needs the feature width: update the state with at least one "
                "chunk (it may have 0 rows) on every process first"
            )
        value, count = self.value.detach().clone(), self.count.detach().clone()
        dist.all_reduce(count, op=dist.ReduceOp.SUM, group=group)
        op = dist.ReduceOp.MAX if self.pool is PoolType.MAX else dist.ReduceOp.SUM
        dist.all_reduce(value, op=op, group=group)
        self.value, self.count = value, count
        return self

    def result(self) -> Tensor:
        """The pooled ``(num_sets, D)`` tensor; empty sets give 0."""
        if self.value is None or self.count is None or self.dtype is None:
            raise ValueError("the state is empty: update it with at least one chunk first")
        count = self.count.unsqueeze(-1)
        zero = torch.zeros((), dtype=self.value.dtype, device=self.value.device)
        if self.pool is PoolType.MAX:
            out = torch.where(count > 0, self.value, zero)
        elif self.pool is PoolType.MEAN:
            out = self.value / torch.where(count > 0, count, torch.ones_like(count))
        else:
            out = self.value
        return out.to(self.dtype)

    def __repr__(self) -> str:
        width = None if self.value is None else self.value.shape[1]
        return f"PoolingState(pool_type={self.pool_type!r}, num_sets={self.num_sets}, dim={width})"
