"""The mergeable pooling state behind :mod:`deepsets.streaming` (public there):
:class:`PoolingState`, :func:`chunked` and the :data:`Chunk` alias."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeAlias

import torch
from torch import Tensor

from ._base import Pooled
from ._validation import (
    PoolType,
    check_dim,
    check_jagged_mask,
    check_segment_input,
)
from ._validation import resolve_option as _resolve
from .functional import _rules as rules
from .functional.segment import _segment_pool

__all__ = ["Chunk", "PoolingState", "chunked"]

#: One chunk of a set: rows ``(n, D)``, or rows with their weights ``(n,)``.
Chunk: TypeAlias = "Tensor | tuple[Tensor, Tensor]"


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


class PoolingState(Pooled):
    r"""A mergeable sum / mean / max pooling of ``num_sets`` sets fed in chunks.

    .. math::

        S_s = \sum_{i \in s} w_i x_i, \quad W_s = \sum_{i \in s} w_i, \quad
        M_s = \max_{i \in s,\, w_i > 0} x_i; \qquad
        \mathrm{result}_s = S_s,\ S_s / W_s \text{ or } M_s \ (0 \text{ if } s \text{ is empty})

    Sums accumulate in float32 at least (float16/bfloat16 chunks) and the result has the
    dtype of the first chunk. With autograd on, the result is differentiable with respect to
    every chunk (and keeps their graphs alive); stream under ``torch.no_grad()`` to keep
    memory bounded, or train through :func:`forward_chunks` with ``checkpoint=True`` or
    :func:`backward_chunks`.

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
    def empty(self) -> bool:
        """Whether no chunk has been added or merged yet."""
        return self.value is None

    def _init(self, width: int, dtype: torch.dtype, device: torch.device) -> None:
        wide = rules.accumulation_dtype(dtype)
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
        index = self._checked_index(values, weights, index)
        if self.value is None:
            self._init(values.shape[1], values.dtype, values.device)
        if self.value is None or self.count is None:  # pragma: no cover - set by _init
            raise RuntimeError("PoolingState was not initialised")
        if values.shape[1] != self.value.shape[1]:
            raise ValueError(
                f"values must have {self.value.shape[1]} features like the earlier chunks; "
                f"got shape {tuple(values.shape)}"
            )
        is_max = self.pool is PoolType.MAX
        # max counts the rows of weight > 0; sum and mean add up the weights (W)
        counted = (
            torch.ones_like(index, dtype=self.count.dtype)
            if weights is None
            else (rules.active_of(weights) if is_max else weights).to(self.count.dtype)
        )
        seen = torch.zeros_like(self.count).index_add_(0, index, counted)
        if is_max:  # ``part`` is 0 for sets this chunk did not touch: merge_max skips them
            part = _segment_pool(values, self.pool, index, self.num_sets, weights=weights)
            part = part.to(self.value.dtype)
            self.value = rules.merge_max(self.value, self.count > 0, part, seen > 0)
        else:  # sum and mean both accumulate the weighted sum (in float32 at least)
            wide = values.to(self.value.dtype)
            part = _segment_pool(wide, PoolType.SUM, index, self.num_sets, weights=weights)
            self.value = self.value + part
        self.count = self.count + seen
        return self

    def _checked_index(
        self, values: object, weights: Tensor | None, index: Tensor | None
    ) -> Tensor:
        """Check one chunk; return the int64 set index of its rows."""
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
        return index.to(torch.long)

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
            self.value = rules.merge_max(self.value, self.count > 0, other.value, other.count > 0)
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
        if self.pool is PoolType.MAX:
            out = rules.empty_to_zero(self.value, count > 0)
        elif self.pool is PoolType.MEAN:
            out = self.value / rules.mean_divisor(count)
        else:
            out = self.value
        return out.to(self.dtype)

    def __repr__(self) -> str:
        width = None if self.value is None else self.value.shape[1]
        return f"PoolingState(pool_type={self.pool_type!r}, num_sets={self.num_sets}, dim={width})"
