r"""The linear second-order :math:`S_N`-equivariant layer on edge features, without the
dense matrix (see :mod:`deepsets.equivariance.layers`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._base import Pooled
from .._validation import PoolType
from .contract import (
    EquivariantModule,
    check_grid_input,
    fixed_size,
    linear_pool,
    reset_uniform,
)
from .partitions import pattern_to_orbit_matrix, set_partitions

__all__ = ["SecondOrderEquivariantLayer", "inverse_pattern_matrix"]


def inverse_pattern_matrix(partitions: list[tuple[int, ...]]) -> Tensor:
    """``Z^{-1}``: orbit coordinates → pattern (pool/broadcast) coefficients."""
    return torch.linalg.inv(pattern_to_orbit_matrix(partitions)).round().to(torch.float32)


# Positions of a second-order partition: output axes (o1, o2), then input axes (i1, i2).
_SLOTS = (
    "x",
    "x_t",
    "row:d",
    "row:r",
    "row:c",
    "col:d",
    "col:r",
    "col:c",
    "diag:d",
    "diag:r",
    "diag:c",
    "diag:sd",
    "diag:s",
    "all:sd",
    "all:s",
)


def _second_order_slot(partition: tuple[int, ...]) -> str:
    """Which pooling/broadcast operation the pattern of ``partition`` is.

    The input quantity is read off the input positions (diagonal ``d``, row sums ``r``,
    column sums ``c``, diagonal sum ``sd``, total ``s``, or the matrix itself), its
    placement off the output positions they share a block with.
    """
    o1, o2, i1, i2 = partition
    outputs = {o1, o2}
    if i1 == i2:
        quantity = "d" if i1 in outputs else "sd"
        anchor = i1
    elif i1 in outputs and i2 in outputs:
        return "x" if (i1, i2) == (o1, o2) else "x_t"
    elif i1 in outputs:
        quantity, anchor = "r", i1  # i2 summed: r[a] = Σ_b x[a, b]
    elif i2 in outputs:
        quantity, anchor = "c", i2  # i1 summed: c[b] = Σ_a x[a, b]
    else:
        quantity, anchor = "s", -1
    if o1 == o2:
        placement = "diag"
    elif quantity in ("sd", "s"):
        placement = "all"
    else:
        placement = "row" if anchor == o1 else "col"
    return f"{placement}:{quantity}"


class SecondOrderEquivariantLayer(nn.Module, EquivariantModule, Pooled):
    r"""The linear :math:`S_N`-equivariant layer on edge features (Maron et al. 2019).

    An edge tensor :math:`X \in \mathbb{R}^{N \times N \times C}` transforms as
    :math:`(\pi X)_{ij} = X_{\pi(i)\pi(j)}`. Its equivariant linear maps form a space of
    dimension :math:`B(4) = 15` (for :math:`N \ge 4`), spanned by the 15 pooling and
    broadcasting operations

    .. math::

        Y = \sum_{\pi} \operatorname{op}_\pi(X)\, \Theta_\pi + \text{bias},
        \qquad \operatorname{op}_\pi \in \{X, X^\top,\
        \operatorname{diag}(X), X\mathbf{1}, X^\top\mathbf{1}, \operatorname{tr}X,
        \mathbf{1}^\top X \mathbf{1}\ \text{placed on rows, columns, the diagonal or
        everywhere}\},

    with :math:`\Theta_\pi \in \mathbb{R}^{C_\text{in} \times C_\text{out}}`. The registered
    weight holds the coordinates in the orbit basis of
    ``intertwiner_basis(SymmetricAction(N, 2), SymmetricAction(N, 2))`` (same order), so
    with ``pool_type="sum"`` the layer equals ``EquivariantLinear`` with the same weight, in
    :math:`O(B N^2 C)` time and memory and for any :math:`N`. With ``pool_type="mean"``
    every summed index is averaged instead (divided by :math:`N`), which keeps activations
    independent of the graph size. The bias is equivariant: one value on the diagonal, one
    off it.

    Shapes:
        - ``x``: ``(B, N, N, input_dim)``, any ``N``.
        - output: ``(B, N, N, output_dim)``.

    Args:
        input_dim: features per edge in.
        output_dim: features per edge out.
        pool_type: ``"sum"`` or ``"mean"``.
        bias: learn the two bias vectors.

    Parameters: ``15 · input_dim · output_dim + 2 · output_dim``.

    Reference:
        Maron, Ben-Hamu, Shamir, Lipman, *Invariant and Equivariant Graph Networks*,
        ICLR 2019, https://arxiv.org/abs/1812.09902
    """

    orbit_to_pattern: Tensor
    slot_order: Tensor

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        pool_type: str = "sum",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self._set_widths(input_dim, output_dim)
        self.pool = linear_pool(pool_type)
        partitions = list(set_partitions(4))
        slots = [_SLOTS.index(_second_order_slot(p)) for p in partitions]
        # pattern coefficients in slot order = orbit weights @ (Z^{-1})ᵀ, then permuted.
        self.register_buffer("orbit_to_pattern", inverse_pattern_matrix(partitions))
        self.register_buffer("slot_order", torch.tensor(slots).argsort())
        self.weight = nn.Parameter(torch.empty(output_dim, input_dim, len(partitions)))
        # (output_dim, 2): on the diagonal, off the diagonal (the S_N-invariant matrices).
        self.bias = nn.Parameter(torch.zeros(output_dim, 2)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`U(-b, b)`, :math:`b = 1/\\sqrt{15\\, C_\\text{in}}`; zero bias."""
        reset_uniform(self.weight, self.bias, self.weight.shape[-1] * self.input_dim)

    def _pattern_weights(self) -> Tensor:
        """``(15, C_in, C_out)``: the operation coefficients, in ``_SLOTS`` order."""
        pattern = self.weight @ self.orbit_to_pattern.to(self.weight.dtype).T  # (Co, Ci, 15)
        return pattern[:, :, self.slot_order].permute(2, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        check_grid_input(x, self.weight, self.input_dim, layout="(B, N, N, C)")
        if x.shape[1] != x.shape[2]:
            raise ValueError(
                f"x must be square in its node axes (B, N, N, C); got {tuple(x.shape)}"
            )
        n = x.shape[1]
        scale = 1.0 / n if self.pool is PoolType.MEAN and n > 0 else 1.0
        w = self._pattern_weights()  # (15, Ci, Co)
        c_out = self.output_dim

        diag = x.diagonal(dim1=1, dim2=2).transpose(1, 2)  # (B, N, Ci)
        rows = x.sum(dim=2) * scale  # (B, N, Ci): Σ_b x[a, b]
        cols = x.sum(dim=1) * scale  # (B, N, Ci): Σ_a x[a, b]
        vectors = torch.cat([diag, rows, cols], dim=-1)  # (B, N, 3·Ci)
        scalars = torch.cat([diag.sum(1) * scale, rows.sum(1) * scale], dim=-1)  # (B, 2·Ci)

        out = torch.cat([x, x.transpose(1, 2)], dim=-1) @ w[0:2].reshape(-1, c_out)  # (B, N, N, Co)
        on_rows = vectors @ w[2:5].reshape(-1, c_out)  # (B, N, Co), indexed by i
        on_cols = vectors @ w[5:8].reshape(-1, c_out)  # (B, N, Co), indexed by j
        on_diag = vectors @ w[8:11].reshape(-1, c_out)  # (B, N, Co)
        on_diag = on_diag + (scalars @ w[11:13].reshape(-1, c_out)).unsqueeze(1)
        everywhere = scalars @ w[13:15].reshape(-1, c_out)  # (B, Co)
        if self.bias is not None:
            everywhere = everywhere + self.bias[:, 1]
            on_diag = on_diag + (self.bias[:, 0] - self.bias[:, 1])
        out = out + on_rows.unsqueeze(2) + on_cols.unsqueeze(1) + everywhere[:, None, None]
        out.diagonal(dim1=1, dim2=2).add_(on_diag.transpose(1, 2))  # (B, Co, N) view
        return out

    def example_shape(self, size: int | tuple[int, ...] | None = None) -> tuple[int, ...]:
        """``(N, N, input_dim)`` for ``size = N``."""
        (n,) = fixed_size(size, 1, what="N, the number of nodes")
        return (n, n, self.input_dim)

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, output_dim={self.output_dim}, "
            f"pool_type={self.pool_type!r}, bias={self.bias is not None}, basis_size=15"
        )
