r"""The pooling rules, stated once: every input form (padded, packed, streamed, chunked
backward) calls these helpers instead of restating them.

* **Active elements.** An element belongs to its set when its weight is ``> 0`` (a bool
  mask is its own answer). Inactive elements are *replaced* — by 0 for sum and mean, by
  :math:`-\infty` for max — never multiplied by 0, so NaN/±inf padding cannot leak into a
  value or a gradient.
* **Empty set = 0.** A set with no active element pools to 0 for every aggregation, with
  finite (zero) gradients: the mean divides by 1 instead of 0, the max's :math:`-\infty` is
  replaced by 0.
* **The mean's divisor** is the total weight :math:`W = \sum_i w_i` (the element count
  without weights).
* **Accumulation dtype.** Sum and mean of float16 / bfloat16 accumulate in float32 and
  return the input's dtype; max is exact in any dtype.
* **Max and its gradient.** :math:`\max_{i : w_i > 0} x_i`; the gradient goes to the active
  elements attaining the max, split equally between ties (as ``torch.amax`` splits it).
  *NaN is never hidden*: a NaN in a set makes its max NaN (per feature), and then every
  active element of that set receives a NaN gradient for that feature (the tie count is 0
  since NaN equals nothing, and :math:`0 \cdot (g / 0)` is NaN) — exactly what
  ``torch.amax`` gives on a dense tensor.
* **Merging running maxima** (streaming) keeps the same rule: two partial maxima are merged
  by ``amax`` over the pair, so a NaN partial makes every partial's gradient NaN.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._validation import PoolType

__all__ = [
    "LOW_PRECISION",
    "IndexMax",
    "MaskedMax",
    "accumulation_dtype",
    "active_of",
    "empty_to_zero",
    "max_input_grad",
    "mean_divisor",
    "merge_max",
    "merge_ties",
    "widens",
]

#: Dtypes whose sum and mean accumulate in float32.
LOW_PRECISION = (torch.float16, torch.bfloat16)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype sums of ``dtype`` values accumulate in: float32 for half precision."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def widens(pool: PoolType, dtype: torch.dtype) -> bool:
    """Whether pooling ``dtype`` input with ``pool`` must accumulate in a wider dtype."""
    return pool is not PoolType.MAX and dtype in LOW_PRECISION


def active_of(weights: Tensor) -> Tensor:
    """Bool: which elements belong to their set (weight ``> 0``; a bool mask as it is)."""
    return weights if weights.dtype == torch.bool else weights > 0


def mean_divisor(count: Tensor) -> Tensor:
    """The mean's divisor from the total weight: 1 for an empty set, so it pools to 0."""
    return torch.where(count > 0, count, torch.ones_like(count))


def empty_to_zero(out: Tensor, nonempty: Tensor) -> Tensor:
    """Replace the max of empty sets (:math:`-\\infty`, or garbage) by 0."""
    return torch.where(nonempty, out, torch.zeros((), dtype=out.dtype, device=out.device))


def max_input_grad(hit: Tensor, share: Tensor, active: Tensor | None = None) -> Tensor:
    """Gradient of every element of a max: ``hit · share``, 0 on inactive elements.

    ``share`` is ``grad / ties`` per set (broadcast or gathered to the elements' shape);
    where the max is NaN, ``ties == 0`` and the product is NaN for every element (the NaN
    rule). ``hit`` may be reused as the output buffer.
    """
    grad = hit.to(share.dtype).mul_(share) if hit.dtype == torch.bool else hit.mul_(share)
    if active is None:
        return grad
    return grad.masked_fill_(~active, 0.0)


class MaskedMax(torch.autograd.Function):
    """Padded ``(B, M, D)`` max over active elements ``(B, M, 1)`` → ``(B, 1, D)``.

    The value is ``amax`` with inactive elements replaced by :math:`-\\infty`; the gradient
    is split between the *active* elements attaining the max (so a set whose elements are
    all :math:`-\\infty` does not share its gradient with its padding).
    """

    @staticmethod
    def forward(x: Tensor, active: Tensor) -> Tensor:
        return x.masked_fill(~active, float("-inf")).amax(dim=1, keepdim=True)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, active = inputs
        ctx.save_for_backward(x, active, output)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, active, out = ctx.saved_tensors
        hit = (x == out) & active  # (B, M, D)
        ties = hit.sum(dim=1, keepdim=True)  # (B, 1, D)
        return max_input_grad(hit, grad / ties, active), None


class IndexMax(torch.autograd.Function):
    """``amax`` of rows ``(N, D)`` grouped by an index into ``(S, D)``; optional active rows.

    Sets without a row give 0. The gradient follows the max rule of this module.
    """

    @staticmethod
    def forward(values: Tensor, index: Tensor, num_sets: int, active: Tensor | None) -> Tensor:
        if active is not None:
            values = values.masked_fill(~active.unsqueeze(-1), float("-inf"))
        expanded = index.unsqueeze(1).expand_as(values)
        out = values.new_zeros(num_sets, values.shape[1])
        return out.scatter_reduce_(0, expanded, values, "amax", include_self=False)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        values, index, _, active = inputs
        ctx.save_for_backward(values, index, output, active)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        values, index, out, active = ctx.saved_tensors
        hit = values == out.index_select(0, index)  # (N, D) rows attaining their set's max
        if active is not None:
            hit &= active.unsqueeze(-1)
        # (N, D) 1 where a row attains its set's max; converted once and reused in place
        hit_f = hit.to(grad.dtype)
        ties = torch.zeros_like(out).index_add_(0, index, hit_f)  # (S, D)
        share = (grad / ties).index_select(0, index)
        row_active = None if active is None else active.unsqueeze(-1)
        return max_input_grad(hit_f, share, row_active), None, None, None


def merge_max(a: Tensor, a_seen: Tensor, b: Tensor, b_seen: Tensor) -> Tensor:
    """The max of two partial maxima ``(S, D)``; ``a_seen``/``b_seen`` ``(S,)``: whether the
    partial has an element (an empty partial never ties with a real ``-inf``).

    With autograd, ``amax`` over the pair: ties split, and a NaN partial sends NaN to both.
    """
    if a.requires_grad or b.requires_grad:
        both = torch.stack([a, b]).amax(dim=0)
    else:
        both = torch.maximum(a, b)
    a_seen, b_seen = a_seen.unsqueeze(-1), b_seen.unsqueeze(-1)
    return torch.where(a_seen, torch.where(b_seen, both, a), b)


def merge_ties(running: Tensor, ties: Tensor, chunk_max: Tensor, chunk_ties: Tensor) -> Tensor:
    """The number of elements attaining ``max(running, chunk_max)``; 0 where it is NaN."""
    merged = torch.where(
        chunk_max > running,
        chunk_ties,
        torch.where(chunk_max == running, ties + chunk_ties, ties),
    )
    nan = running.isnan() | chunk_max.isnan()
    return merged.masked_fill(nan, 0)
