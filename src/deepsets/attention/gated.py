"""Gated attention pooling for multiple-instance learning (Ilse et al. 2018,
https://arxiv.org/abs/1802.04712), for padded, weighted and packed sets."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_dim
from ..functional.softmax import _masked_softmax, _segment_softmax
from ._ops import Padded
from .blocks import SetBlock, Sets, as_output, check_flag

__all__ = ["GatedAttentionPooling"]


class GatedAttentionPooling(SetBlock):
    r"""Attention-based MIL pooling (Ilse et al. 2018), gated or not.

    .. math::

        z = \sum_i a_i h_i, \qquad
        a_i = \frac{w_i \exp\big(v^\top (\tanh(V h_i) \odot \mathrm{sigm}(U h_i))\big)}
                   {\sum_j w_j \exp\big(v^\top (\tanh(V h_j) \odot \mathrm{sigm}(U h_j))\big)}

    (without the gate, :math:`a_i \propto w_i \exp(v^\top \tanh(V h_i))`). Multiplicities
    :math:`w_i` enter as :math:`\log w_i` in the logits; padding has :math:`w_i = 0`. An empty
    set pools to 0, as :func:`~deepsets.functional.masked_pool` does. Permutation-invariant;
    usable as a Deep Sets pooling (output ``(B, input_dim)``, ``pooled_dim == input_dim``).
    :meth:`attention` gives the weights :math:`a_i`, e.g. to see which instances decide.

    Shapes:
        - ``x``: ``(B, M, input_dim)``, a jagged nested ``(B, j, input_dim)``, or rows
          ``(N, input_dim)`` with ``offsets (S + 1,)`` or ``index (N,)``
        - ``mask``: ``(B, M)`` / jagged ``(B, j)`` / ``(N,)``, bool or weights ``>= 0``
        - output: ``(B, input_dim)``

    Args:
        input_dim: features per instance :math:`h_i`.
        attention_dim: rows of :math:`V` and :math:`U`.
        gated: use the gate :math:`\mathrm{sigm}(U h_i)`.

    Reference:
        Ilse et al., *Attention-based Deep Multiple Instance Learning*, ICML 2018,
        https://arxiv.org/abs/1802.04712
    """

    def __init__(self, input_dim: int, *, attention_dim: int = 128, gated: bool = True) -> None:
        super().__init__()
        self.input_dim = self.pooled_dim = check_dim(input_dim, name="input_dim")
        self.attention_dim = check_dim(attention_dim, name="attention_dim")
        self.gated = check_flag(gated, name="gated")
        self.attention_v = nn.Linear(input_dim, attention_dim)
        self.attention_u = nn.Linear(input_dim, attention_dim) if gated else None
        self.attention_w = nn.Linear(attention_dim, 1)
        self.config: dict[str, Any] = {
            "input_dim": input_dim,
            "attention_dim": attention_dim,
            "gated": gated,
        }

    def _weights(self, sets: Sets) -> Tensor:
        hidden = torch.tanh(self.attention_v(sets.x))
        if self.attention_u is not None:
            hidden = hidden * torch.sigmoid(self.attention_u(sets.x))
        logits = self.attention_w(hidden).squeeze(-1)  # (B, M) or (N,)
        if isinstance(sets, Padded):
            return _masked_softmax(logits, sets.bias, sets.nonempty)
        return _segment_softmax(logits.unsqueeze(-1), sets.set_index, sets.num_sets, sets.bias)[
            :, 0
        ]

    def transform(self, sets: Sets) -> Tensor:
        a = self._weights(sets)
        if isinstance(sets, Padded):
            return torch.einsum("bm,bmd->bd", a, sets.x)
        out = sets.x.new_zeros(sets.num_sets, sets.x.shape[1])
        return out.index_add_(0, sets.set_index, a.unsqueeze(-1) * sets.x)

    def finish(self, sets: Sets, out: Tensor) -> Tensor:
        return out

    def attention(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        offsets: Tensor | None = None,
        index: Tensor | None = None,
        num_sets: int | None = None,
    ) -> Tensor:
        """The attention weights :math:`a_i`: ``(B, M)`` for padded input (0 at padding),
        jagged ``(B, j)`` for a nested ``x``, ``(N,)`` for rows; they sum to 1 per non-empty set."""
        sets = self.read(x, mask, offsets=offsets, index=index, num_sets=num_sets)
        return as_output(sets, self._weights(sets))

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, attention_dim={self.attention_dim}, gated={self.gated}"
