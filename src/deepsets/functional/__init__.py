"""Functional pooling over sets.

- :func:`masked_pool` — padded sets ``(B, M, D)`` with an optional bool/weight mask.

All forms share one set of semantics: −∞-correct max, empty sets pool to 0 with finite
gradients, float weights act as multiplicities (sum) or proportions (mean).
"""

from .padded import active_elements, masked_pool

__all__ = ["active_elements", "masked_pool"]
