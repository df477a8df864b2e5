r"""Softmax over the elements of each set: packed rows (segments) and padded sets with a mask.

Attention over a set normalises scores over the set's elements. Both forms here share the
pooling semantics of :mod:`deepsets.functional`:

* **weights are multiplicities** — an element of weight :math:`w_i` counts as :math:`w_i`
  copies: :math:`a_i = w_i e^{s_i} / \sum_j w_j e^{s_j}`, i.e. :math:`\log w_i` is added to
  the score. Weight 0 (or ``False``) marks padding;
* **padding never leaks** — scores of padded elements are replaced by :math:`-\infty`
  (never multiplied by 0), so NaN/inf there reach neither the result nor a gradient;
* **empty sets are defined** — a set with no element of positive weight gets all-zero
  attention (no NaN), with finite gradients; an empty segment simply has no rows;
* **numerically stable** — the per-set maximum is subtracted before ``exp``.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from .._jagged import as_long, segment_layout
from .._validation import check_jagged_mask, check_mask, check_segment_input

__all__ = ["log_multiplicity", "masked_softmax", "segment_softmax"]


def log_multiplicity(weights: Tensor, dtype: torch.dtype) -> Tensor:
    """``log w`` with ``-inf`` where ``w == 0`` (bool: 0 / ``-inf``), finite gradients.

    Unchecked: ``weights`` are validated (finite, ``>= 0``). The logarithm is taken of
    ``where(w > 0, w, 1)``, so a weight of 0 never produces the ``0 · inf`` NaN gradient.
    """
    if weights.dtype == torch.bool:
        zero = torch.zeros((), dtype=dtype, device=weights.device)
        return torch.where(weights, zero, float("-inf"))
    w = weights.to(dtype)
    positive = w > 0
    safe = torch.where(positive, w, torch.ones((), dtype=dtype, device=w.device))
    return torch.where(positive, safe.log(), float("-inf"))


def _segment_softmax(
    logits: Tensor, index: Tensor, num_sets: int, bias: Tensor | None = None
) -> Tensor:
    """Unchecked: softmax of ``logits (N, C)`` over the rows of each set, per column.

    ``bias (N,)`` is added to every column (log-weights; ``-inf`` removes a row, whatever
    its logits hold).
    """
    if bias is not None:
        removed = (bias == float("-inf")).unsqueeze(-1)  # (N, 1)
        logits = logits.masked_fill(removed, 0.0) + bias.unsqueeze(-1).to(logits.dtype)
    # The maximum only shifts the exponent: detached, it needs no gradient of its own.
    with torch.no_grad():
        peak = logits.new_full((num_sets, logits.shape[1]), float("-inf"))
        expanded = index.unsqueeze(-1).expand_as(logits)
        peak = peak.scatter_reduce(0, expanded, logits, "amax", include_self=True)
        peak = peak.masked_fill(peak == float("-inf"), 0.0)  # empty or all-removed sets
    scores = (logits - peak.index_select(0, index)).exp()  # (N, C), -inf rows give 0
    total = torch.zeros_like(peak).index_add_(0, index, scores)  # (S, C)
    total = torch.where(total > 0, total, torch.ones_like(total))  # empty sets: 0 / 1
    return scores / total.index_select(0, index)


def segment_softmax(
    logits: Tensor,
    *,
    offsets: Tensor | None = None,
    index: Tensor | None = None,
    num_sets: int | None = None,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Softmax over the rows of each packed set, column by column.

    .. math::

        a_i = \frac{w_i\, e^{s_i}}{\sum_{j \in \mathrm{set}(i)} w_j\, e^{s_j}}
            = \frac{e^{s_i + \log w_i - m}}{\sum_{j \in \mathrm{set}(i)} e^{s_j + \log w_j - m}},
        \qquad m = \max_{j \in \mathrm{set}(i)} (s_j + \log w_j)

    Rows of weight 0 (or log-weight :math:`-\infty`) get :math:`a_i = 0` whatever their
    logits hold (NaN, ±inf); a set without a row of positive weight gets all zeros; empty
    sets have no rows. With integer weights the result equals the softmax over the set with
    every row repeated :math:`w_i` times (each copy's share summed). Gradients are those of
    the formula (the maximum :math:`m` is a constant shift).

    Shapes:
        - ``logits``: ``(N_total,)`` or ``(N_total, C)`` (``C`` columns normalised
          independently, e.g. heads × queries)
        - ``offsets``: ``(S + 1,)`` CSR offsets — or ``index``: ``(N_total,)`` set of every row
        - ``weights`` / ``log_weights``: ``(N_total,)``, optional (at most one)
        - output: the shape of ``logits``

    Args:
        logits: scores :math:`s_i`.
        offsets: CSR offsets (exactly one of ``offsets`` and ``index``).
        index: the set of every row, any order.
        num_sets: ``S``; defaults to ``len(offsets) - 1`` or ``index.max() + 1``.
        weights: bool, or float multiplicities ``>= 0``.
        log_weights: :math:`\log w_i` directly (``-inf`` allowed), float.

    Raises:
        ValueError: for wrong shapes, both or neither of ``offsets``/``index``, both
            ``weights`` and ``log_weights``, or negative / non-finite weights.

    Reference:
        Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor; got {type(logits).__name__}")
    if logits.dim() not in (1, 2):
        raise ValueError(
            f"logits must have shape (N,) or (N, C); got {logits.dim()}-D shape "
            f"{tuple(logits.shape)}"
        )
    rows = logits if logits.dim() == 2 else logits.unsqueeze(-1)
    num_sets = check_segment_input(
        rows, offsets=offsets, index=index, num_sets=num_sets, name="logits"
    )
    if weights is not None and log_weights is not None:
        raise ValueError("pass at most one of weights and log_weights; got both")
    check_jagged_mask(weights, rows.shape[0], name="weights", like=rows)
    bias = None if weights is None else log_multiplicity(weights, rows.dtype)
    if log_weights is not None:
        _check_log_weights(log_weights, rows)
        bias = log_weights
    if offsets is not None:
        index = segment_layout(offsets, rows.shape[0]).set_index
    out = _segment_softmax(rows, as_long(cast(Tensor, index)), num_sets, bias)
    return out if logits.dim() == 2 else out.squeeze(-1)


def _check_log_weights(log_w: object, rows: Tensor) -> None:
    if not isinstance(log_w, Tensor):
        raise TypeError(f"log_weights must be a torch.Tensor; got {type(log_w).__name__}")
    if log_w.shape != (rows.shape[0],) or not log_w.is_floating_point():
        raise ValueError(
            f"log_weights must be a floating tensor of shape (N,) = ({rows.shape[0]},); "
            f"got shape {tuple(log_w.shape)} and dtype {log_w.dtype}"
        )
    if log_w.device != rows.device:
        raise ValueError(
            f"log_weights is on {log_w.device} but logits is on {rows.device}; "
            "move both to one device"
        )


def _masked_softmax(logits: Tensor, bias: Tensor | None, nonempty: Tensor | None) -> Tensor:
    """Unchecked: softmax over the last dimension of ``logits (B, ..., M)``.

    ``bias (B, M)`` (log-weights, ``-inf`` at padding) is added per set; ``nonempty (B,)``
    says which sets have an element: the others get all-zero attention (their logits are
    replaced by 0 first, so nothing is ``-inf - (-inf)``).
    """
    if bias is None:
        return torch.softmax(logits, dim=-1)
    view = (bias.shape[0],) + (1,) * (logits.dim() - 2) + (bias.shape[1],)
    bias = bias.view(view)
    removed = bias == float("-inf")
    logits = logits.masked_fill(removed, 0.0) + bias  # padding holds -inf, whatever it held
    if nonempty is None:
        return torch.softmax(logits, dim=-1)
    keep = nonempty.view((-1,) + (1,) * (logits.dim() - 1))
    logits = torch.where(keep, logits, torch.zeros((), dtype=logits.dtype, device=logits.device))
    return torch.softmax(logits, dim=-1) * keep.to(logits.dtype)


def masked_softmax(logits: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Softmax over the last dimension (the elements of each padded set), masked/weighted.

    .. math:: a_{b,i} = \frac{w_{b,i}\, e^{s_{b,i}}}{\sum_j w_{b,j}\, e^{s_{b,j}}}

    with :math:`w` from ``mask`` (bool: 0/1; float: multiplicities). Padded positions get 0
    whatever their logits hold; a set with no element gets all zeros, with finite gradients.

    Shapes:
        - ``logits``: ``(B, ..., M)`` (e.g. ``(B, heads, queries, M)``)
        - ``mask``: ``(B, M)``, bool or float weights ``>= 0``, optional
        - output: the shape of ``logits``

    Raises:
        ValueError: if ``mask`` does not have shape ``(B, M)`` or holds negative /
            non-finite weights.

    Reference:
        Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
    """
    if not isinstance(logits, Tensor) or logits.dim() < 2:
        raise ValueError(
            "logits must be a tensor of shape (B, ..., M); got "
            + (f"shape {tuple(logits.shape)}" if isinstance(logits, Tensor) else repr(logits))
        )
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor; got dtype {logits.dtype}")
    if mask is None:
        return torch.softmax(logits, dim=-1)
    # check_mask reads the (B, M) of a (B, M, ...) tensor: a view with M in dimension 1
    check_mask(mask, logits.unsqueeze(-1).movedim(-2, 1), name="mask")
    bias = log_multiplicity(mask, logits.dtype)
    nonempty = (mask if mask.dtype == torch.bool else mask > 0).any(dim=-1)
    return _masked_softmax(logits, bias, nonempty)
