"""Functional pooling over sets.

- :func:`masked_pool` — padded sets ``(B, M, D)`` with an optional bool/weight mask, or
  packed sets as a ``torch.nested`` jagged tensor ``(B, j, D)`` with jagged weights.
- :func:`segment_pool` — packed rows ``(N_total, D)`` split by CSR offsets or a row index
  (PyG-compatible).
- :func:`pooled_outer` — the sum pooling of per-element outer products
  :math:`\\sum_n w_n u_n v_n^\\top` (second moments, Gram matrices), in every input form.
- :func:`segment_softmax` / :func:`masked_softmax` — softmax over each set's elements
  (attention weights), packed or padded, with the same masking and weight semantics.

All forms share one set of semantics: −∞-correct max, empty sets pool to 0 with finite
gradients, float weights act as multiplicities (sum) or proportions (mean).
"""

from .moments import pooled_outer
from .padded import active_elements, masked_pool
from .segment import segment_pool
from .softmax import masked_softmax, segment_softmax

__all__ = [
    "active_elements",
    "masked_pool",
    "masked_softmax",
    "pooled_outer",
    "segment_pool",
    "segment_softmax",
]
