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
:func:`forward_chunks` runs a :class:`~deepsets.DeepSetsInvariant`'s φ chunk by chunk and
ρ once; :func:`backward_chunks` trains on a set that is never held whole. (The model's
methods of the same names call these.)

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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from ._pooling_state import Chunk, PoolingState, chunked
from ._validation import (
    PoolType,
    check_jagged_mask,
    check_set_input,
)
from .functional import _rules as rules

if TYPE_CHECKING:
    from .models import DeepSetsInvariant

__all__ = [
    "Chunk",
    "PoolingState",
    "backward_chunks",
    "chunked",
    "forward_chunks",
    "pool_chunks",
]


# --- training through chunks: φ chunk by chunk, ρ once ------------------------------------


def pool_chunks(
    model: DeepSetsInvariant, chunks: Iterable[Chunk], *, checkpoint: bool = False
) -> PoolingState:
    r"""Run ``model.phi`` over the chunks of one set and pool them into a mergeable state.

    .. math:: \mathrm{state} = \mathrm{pool}_{c}\, \mathrm{pool}_{x \in c}\, \varphi(x)

    Merge states of other chunks or workers (:meth:`PoolingState.merge`,
    :meth:`PoolingState.all_reduce`), then ``model.rho(state.result())``.

    Shapes:
        - every chunk: ``(n, input_dim)`` rows, or a pair ``(rows, weights (n,))``
        - returned state: result ``(1, latent_dim)``

    Args:
        model: a :class:`~deepsets.DeepSetsInvariant`.
        chunks: the rows of the set, in chunks of any size.
        checkpoint: with autograd on, keep only each chunk's rows and pooled partial
            for backward and run φ again on one chunk at a time during backward
            (``torch.utils.checkpoint``): activation memory of one chunk instead of the
            whole set, for one extra φ forward. Ignored under ``torch.no_grad()``.
    """
    if not isinstance(checkpoint, bool):
        raise TypeError(f"checkpoint must be a bool; got {checkpoint!r}")
    recompute = checkpoint and torch.is_grad_enabled()
    state = PoolingState(_mergeable_pool(model))
    for chunk in chunks:
        rows, weights = _checked_chunk(model, chunk)
        if recompute:
            state.merge(_checkpointed_chunk_state(model, rows, weights))
        else:
            state.merge(_chunk_state(model, rows, weights))
    return state


def forward_chunks(
    model: DeepSetsInvariant, chunks: Iterable[Chunk], *, checkpoint: bool = False
) -> Tensor:
    r"""The model on one set given as chunks of rows: φ chunk by chunk, ρ once.

    .. math:: f(X) = \rho\Big(\mathrm{pool}_{x \in X_1 \cup X_2 \cup \dots}\, \varphi(x)\Big)

    Equals ``model(torch.cat(chunks).unsqueeze(0))`` within float tolerance. Under
    ``torch.no_grad()`` memory is bounded by one chunk. With autograd on, every chunk's
    activations are kept for backward unless ``checkpoint=True`` (then only the rows and
    a pooled partial per chunk; φ runs again chunk by chunk during backward).

    Shapes:
        - every chunk: ``(n, input_dim)`` rows, or a pair ``(rows, weights (n,))``
        - output: ``(1, output_dim)``
    """
    return cast(Tensor, model.rho(pool_chunks(model, chunks, checkpoint=checkpoint).result()))


def backward_chunks(
    model: DeepSetsInvariant,
    make_chunks: Callable[[], Iterable[Chunk]],
    loss_fn: Callable[[Tensor], Tensor],
) -> Tensor:
    r"""Forward and backward of ``loss_fn(model(X))`` for one set ``X`` streamed in chunks,
    holding one chunk at a time; gradients accumulate in ``.grad`` as ``backward()`` does.

    Pooling is the only place the elements meet, so the gradient splits by chunk:

    .. math::

        \frac{\partial L}{\partial \theta_\varphi}
        = \sum_{c} \sum_{x \in X_c}
          \Big(\frac{\partial\, \mathrm{pool}}{\partial \varphi(x)}\Big)^{\top} g\,
          \frac{\partial \varphi(x)}{\partial \theta_\varphi},
        \qquad g = \frac{\partial L}{\partial\, \mathrm{pool}}

    Pass 1 pools φ of every chunk without autograd (for max, also counting the elements
    attaining each maximum); ρ and the loss run once, giving ``g``; pass 2 runs φ on each
    chunk again and backpropagates its share — ``w g`` (sum), ``w g / W`` (mean), ``g / ties``
    on the elements attaining the max — by the rules of ``model(x)`` (a NaN max gives every
    element a NaN gradient). Peak memory is one chunk's activations; ``make_chunks`` is
    called twice and must yield the same chunks both times (e.g. read them from disk). Ties
    are found by exact equality: φ of equal elements in chunks of different sizes can differ
    in the last bit, and then one of them gets the gradient (a valid subgradient).

    Shapes:
        - ``make_chunks()`` yields chunks ``(n, input_dim)`` or pairs ``(rows, weights (n,))``
        - ``loss_fn`` takes the output ``(1, output_dim)`` and returns a scalar

    Returns:
        The loss (detached).

    Raises:
        ValueError: if φ has active dropout (its masks would differ between the passes;
            use ``forward_chunks(..., checkpoint=True)``, which replays them).
    """
    if not callable(make_chunks) or not callable(loss_fn):
        raise TypeError("make_chunks and loss_fn must be callables")
    if model.training and any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.phi.modules()):
        raise ValueError(
            "backward_chunks needs a deterministic φ: its dropout would draw other masks "
            "in the second pass; call model.eval() or use "
            "forward_chunks(..., checkpoint=True)"
        )
    pool = _mergeable_pool(model)
    with torch.no_grad():  # pass 1: pooled statistics of the whole set
        state = PoolingState(pool)
        ties: Tensor | None = None  # (1, L) elements attaining the max, for max pooling
        for chunk in make_chunks():
            rows, weights = _checked_chunk(model, chunk)
            h = _phi_of_chunk(model, rows, weights)  # (n, L)
            part = PoolingState(pool).update(h, weights)
            if pool is PoolType.MAX:
                ties = _count_ties(state, part, ties, h, weights)
            state.merge(part)
        if state.empty:
            raise ValueError("make_chunks() yielded no chunk")
        pooled = state.result()  # (1, L)
    pooled = pooled.detach().requires_grad_()
    loss = loss_fn(model.rho(pooled))
    loss.backward()  # ρ's gradients, and g in pooled.grad (a leaf: φ is not reached)
    upstream = cast(Tensor, pooled.grad)  # (1, L)
    # An empty set pools to 0: every share below is 0 on its rows, so φ gets the zero
    # gradients (not None) that model(x).backward() gives it.
    count = cast(Tensor, state.count).unsqueeze(-1)  # (1, 1) total weight (max: elements)
    if pool is PoolType.MAX:
        peak = cast(Tensor, state.value)  # (1, L)
        share = upstream / cast(Tensor, ties)  # NaN rule: 0 ties where the max is NaN
    elif pool is PoolType.MEAN:
        share = upstream / rules.mean_divisor(count)
    else:
        share = upstream
    for chunk in make_chunks():  # pass 2: φ again, one chunk's share of the gradient
        rows, weights = _checked_chunk(model, chunk)
        h = _phi_of_chunk(model, rows, weights)  # (n, L)
        active = None if weights is None else rules.active_of(weights)
        if pool is PoolType.MAX:
            inside = None if active is None else active.unsqueeze(-1)
            coefficient = rules.max_input_grad(h.detach() == peak, share, inside)
        else:  # the chunk's Σ w φ(x): mean's 1/W is in share
            w = torch.ones_like(h[:, :1]) if weights is None else weights.to(h.dtype)[:, None]
            coefficient = w * share  # rows of weight 0 hold φ(0) and get 0
        surrogate = (h * coefficient.detach()).sum()
        if surrogate.requires_grad:
            surrogate.backward()
    return loss.detach()


def _mergeable_pool(model: DeepSetsInvariant) -> PoolType:
    if model.pool is None:
        raise ValueError(
            f"streaming (pool_chunks, forward_chunks, backward_chunks) needs pool_type "
            f"'sum', 'mean' or 'max', which merge chunk by chunk; this model pools with "
            f"pool_type={model.pool_type} (an attention pooling, not streamed): call the "
            f"model on the whole set, padded or packed"
        )
    return model.pool


def _checked_chunk(model: DeepSetsInvariant, chunk: object) -> tuple[Tensor, Tensor | None]:
    rows, weights = chunk if isinstance(chunk, tuple) else (chunk, None)
    if not isinstance(rows, Tensor) or rows.dim() != 2:
        shape = tuple(rows.shape) if isinstance(rows, Tensor) else type(rows).__name__
        raise ValueError(
            f"every chunk must be a tensor of rows of shape (n, {model.input_dim}) "
            f"or a pair (rows, weights); got {shape}"
        )
    check_set_input(rows.unsqueeze(0), model.input_dim, name="chunk", module=model)
    if weights is not None:
        check_jagged_mask(weights, rows.shape[0], name="chunk weights", like=rows)
    return rows, weights


def _phi_of_chunk(model: DeepSetsInvariant, rows: Tensor, weights: Tensor | None) -> Tensor:
    if weights is not None:  # zero rows of weight 0 first: NaN there must not reach φ
        rows = rows.masked_fill(~rules.active_of(weights).unsqueeze(-1), 0.0)
    return cast(Tensor, model.phi(rows))


def _chunk_state(model: DeepSetsInvariant, rows: Tensor, weights: Tensor | None) -> PoolingState:
    return PoolingState(_mergeable_pool(model)).update(_phi_of_chunk(model, rows, weights), weights)


def _checkpointed_chunk_state(
    model: DeepSetsInvariant, rows: Tensor, weights: Tensor | None
) -> PoolingState:
    result_dtype: list[torch.dtype] = []

    def partial(rows: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
        part = _chunk_state(model, rows, weights)
        result_dtype.append(cast(torch.dtype, part.dtype))
        return cast(Tensor, part.value), cast(Tensor, part.count)

    value, count = torch_checkpoint(partial, rows, weights, use_reentrant=False)
    return PoolingState.from_partial(_mergeable_pool(model), value, count, dtype=result_dtype[0])


def _count_ties(
    state: PoolingState, part: PoolingState, ties: Tensor | None, h: Tensor, weights: Tensor | None
) -> Tensor:
    """Update the number of active elements attaining the running max with one chunk."""
    chunk_max = cast(Tensor, part.value)  # (1, L), -inf where the chunk has no element
    hit = h == chunk_max
    if weights is not None:
        hit &= rules.active_of(weights).unsqueeze(-1)
    chunk_ties = hit.sum(0, keepdim=True).to(chunk_max.dtype)  # 0 where the max is NaN
    if ties is None or state.empty:
        return chunk_ties
    return rules.merge_ties(cast(Tensor, state.value), ties, chunk_max, chunk_ties)
