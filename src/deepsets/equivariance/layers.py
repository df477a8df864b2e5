r"""Structured equivariant layers that never build the dense matrix.

Each layer registers the same coordinates as :class:`~deepsets.equivariance.EquivariantLinear`
for its action (the orbit basis of :func:`~deepsets.equivariance.intertwiner_basis`), so a
weight can be copied between the two and the outputs agree. The forward pass converts the
coordinates once — by Möbius inversion on the lattice of set partitions — into the
coefficients of pooling-and-broadcasting operations (identity, transpose, row/column/diagonal
sums, …), which cost :math:`O(B N^2 C)` instead of :math:`O(B N^4 C^2)`.

The first-order :math:`S_n` case is :class:`deepsets.PermutationEquivariantLayer`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._base import Pooled
from .._validation import check_dim, check_mask
from ..functional.padded import _pool, active_elements
from .contract import (
    EquivariantModule,
    check_float_like,
    check_grid_input,
    fixed_size,
    linear_pool,
    reset_uniform,
)
from .partitions import set_partitions
from .second_order import SecondOrderEquivariantLayer, inverse_pattern_matrix

__all__ = ["CyclicConvLayer", "ExchangeableLayer", "SecondOrderEquivariantLayer"]


class ExchangeableLayer(nn.Module, EquivariantModule, Pooled):
    r"""The linear :math:`S_{N_1} \times S_{N_2}`-equivariant layer (Hartford et al. 2018).

    Rows and columns of :math:`X \in \mathbb{R}^{N_1 \times N_2 \times C}` (users × items)
    are permuted independently. The equivariant maps are spanned by four operations,

    .. math::

        Y_{ab} = X_{ab}\Theta_1 + \operatorname{pool}_{b'} X_{ab'}\,\Theta_2
                + \operatorname{pool}_{a'} X_{a'b}\,\Theta_3
                + \operatorname{pool}_{a'b'} X_{a'b'}\,\Theta_4 + \beta,

    the Kronecker products of the Deep Sets pair on each axis. The weight holds the orbit
    coordinates of ``intertwiner_basis(P, P)`` with
    ``P = ProductAction(SymmetricAction(N1), SymmetricAction(N2))``, so with
    ``pool_type="sum"`` and no mask the layer equals ``EquivariantLinear(P, P)`` with the
    same weight. It works for any :math:`N_1, N_2`; a ``mask`` marks the observed entries
    (ragged sizes, missing ratings): pools run over observed entries only (through
    :func:`deepsets.functional.masked_pool`'s semantics, empty → 0) and unobserved outputs
    are exactly 0.

    Shapes:
        - ``x``: ``(B, N1, N2, input_dim)``.
        - ``mask``: ``(B, N1, N2)`` bool, or float weights ``>= 0``, optional.
        - output: ``(B, N1, N2, output_dim)``.

    Args:
        input_dim: features per entry in.
        output_dim: features per entry out.
        pool_type: ``"mean"`` (Hartford et al.) or ``"sum"``.
        bias: learn a bias (the only invariant matrix is constant).

    Parameters: ``4 · input_dim · output_dim + output_dim``.

    Reference:
        Hartford, Graham, Leyton-Brown, Ravanbakhsh, *Deep Models of Interactions Across
        Sets*, ICML 2018, https://arxiv.org/abs/1803.02879
    """

    orbit_to_pattern: Tensor

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        pool_type: str = "mean",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self._set_widths(input_dim, output_dim)
        self.pool = linear_pool(pool_type)
        factor = inverse_pattern_matrix(list(set_partitions(2)))  # (identity, all-ones)
        self.register_buffer("orbit_to_pattern", torch.kron(factor, factor))
        self.weight = nn.Parameter(torch.empty(output_dim, input_dim, 4))
        self.bias = nn.Parameter(torch.zeros(output_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`U(-b, b)`, :math:`b = 1/\\sqrt{4\\, C_\\text{in}}`; zero bias."""
        reset_uniform(self.weight, self.bias, 4 * self.input_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        check_grid_input(x, self.weight, self.input_dim, layout="(B, N1, N2, C)")
        batch, n1, n2, c_in = x.shape
        active = None
        if mask is not None:
            if not isinstance(mask, Tensor) or tuple(mask.shape) != (batch, n1, n2):
                shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
                raise ValueError(
                    f"mask must have shape (B, N1, N2) = {(batch, n1, n2)} to match x; got {shape}"
                )
            check_mask(mask.reshape(batch, n1 * n2), x.reshape(batch, n1 * n2, c_in))
            active = active_elements(mask)
            x = x.masked_fill(~active.unsqueeze(-1), 0.0)

        def pool(t: Tensor, m: Tensor | None, a: Tensor | None) -> Tensor:
            return _pool(t, self.pool, m, active=a, clean=True)

        # Explicit sizes (no -1): any of B, N1, N2 may be 0.
        by_row = x.reshape(batch * n1, n2, c_in)  # pool over columns, per row
        by_col = x.transpose(1, 2).reshape(batch * n2, n1, c_in)  # pool over rows, per column
        whole = x.reshape(batch, n1 * n2, c_in)
        if mask is None or active is None:
            rows = pool(by_row, None, None)
            cols = pool(by_col, None, None)
            total = pool(whole, None, None)  # (B, C)
        else:
            mask_t, active_t = mask.transpose(1, 2), active.transpose(1, 2)
            rows = pool(by_row, mask.reshape(batch * n1, n2), active.reshape(batch * n1, n2))
            cols = pool(by_col, mask_t.reshape(batch * n2, n1), active_t.reshape(batch * n2, n1))
            total = pool(whole, mask.reshape(batch, n1 * n2), active.reshape(batch, n1 * n2))
        rows, cols = rows.reshape(batch, n1, c_in), cols.reshape(batch, n2, c_in)

        w = self.weight @ self.orbit_to_pattern.to(self.weight.dtype).T  # (Co, Ci, 4)
        out = x @ w[:, :, 0].T  # (B, N1, N2, Co)
        out = out + (rows @ w[:, :, 1].T).unsqueeze(2)  # pooled over columns, per row
        out = out + (cols @ w[:, :, 2].T).unsqueeze(1)  # pooled over rows, per column
        everywhere = total @ w[:, :, 3].T  # (B, Co)
        if self.bias is not None:
            everywhere = everywhere + self.bias
        out = out + everywhere[:, None, None]
        if active is not None:
            out = out.masked_fill(~active.unsqueeze(-1), 0.0)
        return out

    def example_shape(self, size: int | tuple[int, ...] | None = None) -> tuple[int, ...]:
        """``(N1, N2, input_dim)`` for ``size = (N1, N2)``."""
        n1, n2 = fixed_size(size, 2, what="(N1, N2), the numbers of rows and columns")
        return (n1, n2, self.input_dim)

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, output_dim={self.output_dim}, "
            f"pool_type={self.pool_type!r}, bias={self.bias is not None}, basis_size=4"
        )


class CyclicConvLayer(nn.Module, EquivariantModule):
    r"""The linear :math:`C_n`-equivariant layer: a full circular convolution.

    .. math::

        y_{i c} = \sum_{t=0}^{n-1} \sum_{c'} w_{c c' t}\, x_{(i - t) \bmod n,\, c'} + b_c

    The weight holds the coordinates of the circulant basis of
    ``intertwiner_basis(CyclicAction(n), CyclicAction(n))`` (basis :math:`t` is the
    :math:`t`-th wrapped diagonal), so the layer equals ``EquivariantLinear`` with the same
    weight; it runs as a product of FFTs in :math:`O(B\, n \log n\, C_\text{in} C_\text{out})`.

    Shapes:
        - ``x``: ``(B, n, input_dim)``.
        - output: ``(B, n, output_dim)``.

    Args:
        n: length of the periodic signal.
        input_dim: features per position in.
        output_dim: features per position out.
        bias: learn a bias (constant over positions, the only invariant vector).

    Parameters: ``n · input_dim · output_dim + output_dim``.

    Reference:
        Cohen, Welling, *Group Equivariant Convolutional Networks*, ICML 2016,
        https://arxiv.org/abs/1602.07576
    """

    def __init__(self, n: int, input_dim: int, output_dim: int, *, bias: bool = True) -> None:
        super().__init__()
        self.n = check_dim(n, name="n")
        self._set_widths(input_dim, output_dim)
        self.weight = nn.Parameter(torch.empty(output_dim, input_dim, n))
        self.bias = nn.Parameter(torch.zeros(output_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`U(-b, b)`, :math:`b = 1/\\sqrt{n\\, C_\\text{in}}`; zero bias."""
        reset_uniform(self.weight, self.bias, self.n * self.input_dim)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() != 3 or x.shape[1] != self.n or x.shape[2] != self.input_dim:
            raise ValueError(
                f"x must have shape (B, n, input_dim) = (B, {self.n}, {self.input_dim}); "
                f"got {tuple(x.shape)}"
            )
        check_float_like(x, self.weight)
        if x.shape[0] == 0:  # no signal: the FFT of an empty batch is not defined everywhere
            out = x.new_zeros(0, self.n, self.output_dim)
            return out if self.bias is None else out + self.bias
        x_hat = torch.fft.rfft(x, dim=1)  # (B, F, Ci)
        w_hat = torch.fft.rfft(self.weight.to(x.dtype), dim=2)  # (Co, Ci, F)
        y_hat = torch.einsum("bfi,oif->bfo", x_hat, w_hat)  # (B, F, Co)
        out = torch.fft.irfft(y_hat, n=self.n, dim=1)  # (B, n, Co)
        return out if self.bias is None else out + self.bias

    def example_shape(self, size: int | tuple[int, ...] | None = None) -> tuple[int, ...]:
        """``(n, input_dim)``; ``size`` may only repeat the layer's ``n``."""
        if size is not None and fixed_size(size, 1, what="the signal length n") != (self.n,):
            raise ValueError(f"size must be the layer's n = {self.n} (or None); got {size!r}")
        return (self.n, self.input_dim)

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, input_dim={self.input_dim}, output_dim={self.output_dim}, "
            f"bias={self.bias is not None}, basis_size={self.n}"
        )
