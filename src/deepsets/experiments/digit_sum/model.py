"""The model of the digit-sum experiment: a sum-pooled :class:`deepsets.DeepSetsInvariant`
with a linear ρ."""

from __future__ import annotations

from collections.abc import Sequence

from ... import DeepSetsInvariant
from ..._validation import resolve_option
from .data import IMAGE_PIXELS, NUM_DIGITS, Variant

__all__ = ["build_model"]


def build_model(variant: str, phi_hidden_dims: Sequence[int]) -> DeepSetsInvariant:
    r"""The digit-sum model :math:`\hat s(X) = w^\top \sum_{x \in X} \varphi(x) + b`.

    φ is an MLP of widths ``phi_hidden_dims`` (``Linear → ReLU`` each) on one digit, the
    pooling is a masked sum, and ρ is a single linear map to one output: a linear ρ stays
    right for sums far larger than those seen in training.

    Shapes:
        - input ``(B, M, 10)`` one-hot digits (``integer``) or ``(B, M, 64)`` pixels
          (``image``), mask ``(B, M)``
        - output ``(B, 1)``: the predicted sum
    """
    kind = resolve_option(variant, Variant, name="variant")
    input_dim = NUM_DIGITS if kind is Variant.INTEGER else IMAGE_PIXELS
    return DeepSetsInvariant(
        input_dim=input_dim,
        phi_hidden_dims=list(phi_hidden_dims),
        rho_hidden_dims=[],
        output_dim=1,
        pool_type="sum",
    )
