r"""Input encoders for set elements: Fourier features of a periodic coordinate.

A set of samples :math:`(x_n, y_n)` of a periodic signal is best fed to a Deep Set through
the Fourier features of the position, :math:`\psi(x_n) = [\cos \omega j x_n,
\sin \omega j x_n]_j`, and their products with the values, :math:`\psi(x_n)\,y_n`: sum
pooling of those gives the classical Fourier-coefficient estimates, and sum pooling of
:math:`\psi\psi^\top` (:func:`deepsets.functional.pooled_outer`) the Gram matrix of a
least-squares Fourier fit — both sum-decomposable, as Deep Sets' Theorem 2 asks.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._jagged import is_jagged, jagged_values
from ._validation import _check_ragged_dim, _shape, check_like
from .functional.segment import jagged_like

__all__ = ["FourierFeatures"]


def _check_num_frequencies(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"num_frequencies must be an int >= 1; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"num_frequencies must be an int >= 1; got {value}")
    return value


def _check_period(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"period must be a positive finite number; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"period must be a positive finite number; got {value!r}")
    return float(value)


class FourierFeatures(nn.Module):
    r"""Fourier features of a periodic coordinate, optionally multiplied by per-element values.

    .. math::

        \psi(x) = \big[\cos(\omega j x)\big]_{j=1}^{J} \oplus
                  \big[\sin(\omega j x)\big]_{j=1}^{J}, \qquad
        \omega = \frac{2\pi}{\text{period}},

    and with ``values`` :math:`v \in \mathbb R^V` the output is
    :math:`\psi(x) \oplus \operatorname{vec}(\psi(x)\, v^\top)`, :math:`2J(1 + V)` features:
    after the :math:`2J` features of :math:`\psi` come the products, feature
    :math:`2J + fV + k` being :math:`\psi_f(x)\, v_k` (the :math:`V` products of one
    feature :math:`f` side by side).

    A shift :math:`x \to x + c` rotates every pair :math:`(\cos \omega jx, \sin \omega jx)`
    by the angle :math:`\omega jc` — a linear map of the features — so power-like quantities
    :math:`a_j^2 + b_j^2` of pooled linear statistics
    :math:`(a_j, b_j) = \sum_n y_n (\cos \omega jx_n, \sin \omega jx_n)` do not depend on the
    origin of :math:`x`. The features are periodic in :math:`x` with the given period. The
    module has no parameters.

    The encoder is elementwise, so it takes padded tensors of any shape and packed sets (a
    jagged nested tensor ``x`` of shape ``(B, j)``, with ``values`` a jagged ``(B, j, V)``
    of the same offsets); packed output is jagged with ``x``'s structure. Padded positions
    are encoded too (they are masked later, by the pooling).

    Shapes:
        - ``x``: ``(...)`` positions, e.g. ``(B, M)``, or jagged ``(B, j)``
        - ``values``: ``(..., V)``, optional (same dtype and device as ``x``)
        - output: ``(..., 2J)``, or ``(..., 2J(1 + V))`` with ``values``

    Args:
        num_frequencies: :math:`J \ge 1`, the number of harmonics.
        period: the period of the coordinate (default :math:`2\pi`, so :math:`\omega = 1`).

    Raises:
        TypeError: for a non-int ``num_frequencies``, a non-number ``period``, non-tensor
            or non-floating ``x``/``values``, or ``values`` of another dtype than ``x``.
        ValueError: for ``num_frequencies < 1``, a non-positive ``period``, or ``values``
            whose shape is not ``(*x.shape, V)``.

    References:
        Rahimi & Recht, *Random Features for Large-Scale Kernel Machines*, NeurIPS 2007,
        https://papers.nips.cc/paper/3182-random-features-for-large-scale-kernel-machines;
        Tancik et al., *Fourier Features Let Networks Learn High Frequency Functions in Low
        Dimensional Domains*, NeurIPS 2020, https://arxiv.org/abs/2006.10739;
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    harmonics: Tensor

    def __init__(self, num_frequencies: int, *, period: float = 2 * math.pi) -> None:
        super().__init__()
        self.num_frequencies = _check_num_frequencies(num_frequencies)
        self.period = _check_period(period)
        self.omega = 2 * math.pi / self.period
        # j = 1..J as integers: module.to(dtype) / .float() / .half() leave them exact, and
        # each forward forms ωj in the input's dtype (one rounding).
        self.register_buffer(
            "harmonics", torch.arange(1, self.num_frequencies + 1), persistent=False
        )

    def output_dim(self, num_values: int = 0) -> int:
        """The feature width, :math:`2J(1 + V)`, for ``num_values`` :math:`= V` values per
        element (0: no ``values``)."""
        if isinstance(num_values, bool) or not isinstance(num_values, int) or num_values < 0:
            raise ValueError(f"num_values must be a non-negative int; got {num_values!r}")
        return 2 * self.num_frequencies * (1 + num_values)

    def forward(self, x: Tensor, values: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of positions; got {type(x).__name__}")
        if values is not None and not isinstance(values, Tensor):
            raise TypeError(
                f"values must be a torch.Tensor of shape (*x.shape, V) or None; "
                f"got {type(values).__name__}"
            )
        if is_jagged(x):
            return self._forward_jagged(x, values)
        if x.is_nested or (values is not None and values.is_nested):
            raise ValueError(
                "packed x must be a jagged nested tensor (layout=torch.jagged), with values "
                "jagged too; padded x takes padded values"
            )
        self._check(x, values)
        return self._encode(x, values)

    def _forward_jagged(self, x: Tensor, values: Tensor | None) -> Tensor:
        _check_ragged_dim(x, name="x")
        if x.lengths() is not None:  # type: ignore[attr-defined]  # a view with holes
            x = x.contiguous()
        rows = jagged_values(x)  # (N, ...)
        value_rows = None
        if values is not None:
            if not is_jagged(values):
                raise ValueError(
                    f"values for a jagged x must be a jagged nested tensor of shape "
                    f"(B, j, V) with x's offsets; got a tensor of shape {_shape(values)}"
                )
            if values.lengths() is not None:  # type: ignore[attr-defined]
                values = values.contiguous()
            value_rows = jagged_values(values)  # (N, ..., V)
            same = values.offsets() is x.offsets() or (  # type: ignore[attr-defined]
                values.offsets().shape == x.offsets().shape  # type: ignore[attr-defined]
                and torch.equal(values.offsets(), x.offsets())  # type: ignore[attr-defined]
            )
            if not same:
                raise ValueError(
                    f"values must have the same set sizes as x (the same offsets); "
                    f"got shapes {_shape(values)} and {_shape(x)}"
                )
        self._check(rows, value_rows)
        return jagged_like(self._encode(rows, value_rows), x)

    @staticmethod
    def _check(x: Tensor, values: Tensor | None) -> None:
        """Plain tensors (for packed input: the rows ``(N, ...)`` and ``(N, ..., V)``)."""
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
        if values is None:
            return
        if values.dim() == 0 or values.shape[:-1] != x.shape:
            expected = "(" + ", ".join([*map(str, x.shape), "V"]) + ")"
            raise ValueError(
                f"values must have shape (*x.shape, V) = {expected}; got shape {_shape(values)}"
            )
        if not values.is_floating_point():
            raise TypeError(f"values must be a floating-point tensor; got dtype {values.dtype}")
        check_like(values, x, name="values", what="x")

    def _encode(self, x: Tensor, values: Tensor | None) -> Tensor:
        """Unchecked: the features of plain tensors ``x (...)`` and ``values (..., V)``."""
        frequencies = self.harmonics.to(x.dtype) * self.omega  # (J,) ωj
        angle = x.unsqueeze(-1) * frequencies  # (..., J)
        psi = torch.cat([angle.cos(), angle.sin()], dim=-1)  # (..., 2J)
        if values is None:
            return psi
        products = (psi.unsqueeze(-1) * values.unsqueeze(-2)).flatten(-2)  # (..., 2J·V)
        return torch.cat([psi, products], dim=-1)  # (..., 2J(1 + V))

    def extra_repr(self) -> str:
        return f"num_frequencies={self.num_frequencies}, period={self.period:g}"
