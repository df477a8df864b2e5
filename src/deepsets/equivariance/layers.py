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

from .._validation import PoolType, check_dim, check_like, check_mask
from .._validation import resolve_option as _resolve
from ..functional.padded import _pool, active_elements
from .basis import pattern_to_orbit_matrix, set_partitions

__all__ = ["CyclicConvLayer", "ExchangeableLayer", "SecondOrderEquivariantLayer"]


def _linear_pool(pool_type: object) -> PoolType:
    pool = _resolve(pool_type, PoolType, name="pool_type")
    if pool is PoolType.MAX:
        raise ValueError("pool_type must be 'sum' or 'mean' for a linear layer; got 'max'")
    return pool


def _check_grid_input(x: object, weight: Tensor, in_channels: int, *, layout: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape {layout}; got {type(x).__name__}")
    if x.dim() != 4 or x.shape[-1] != in_channels:
        raise ValueError(
            f"x must have shape {layout} with C = in_channels = {in_channels}; got {tuple(x.shape)}"
        )
    _check_float_like(x, weight)
    return x


def _check_float_like(x: Tensor, weight: Tensor) -> None:
    """Floating ``x`` on the layer's device and (outside autocast) of its dtype."""
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
    check_like(x, weight, name="x", what="the layer")


def _inverse_pattern_matrix(partitions: list[tuple[int, ...]]) -> Tensor:
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


class SecondOrderEquivariantLayer(nn.Module):
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
        - ``x``: ``(B, N, N, in_channels)``, any ``N``.
        - output: ``(B, N, N, out_channels)``.

    Args:
        in_channels: features per edge in.
        out_channels: features per edge out.
        pool_type: ``"sum"`` or ``"mean"``.
        bias: learn the two bias vectors.

    Parameters: ``15 · in_channels · out_channels + 2 · out_channels``.

    Reference:
        Maron, Ben-Hamu, Shamir, Lipman, *Invariant and Equivariant Graph Networks*,
        ICLR 2019, https://arxiv.org/abs/1812.09902
    """

    orbit_to_pattern: Tensor
    slot_order: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        pool_type: str = "sum",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = check_dim(in_channels, name="in_channels")
        self.out_channels = check_dim(out_channels, name="out_channels")
        self.pool = _linear_pool(pool_type)
        partitions = list(set_partitions(4))
        slots = [_SLOTS.index(_second_order_slot(p)) for p in partitions]
        # pattern coefficients in slot order = orbit weights @ (Z^{-1})ᵀ, then permuted.
        self.register_buffer("orbit_to_pattern", _inverse_pattern_matrix(partitions))
        self.register_buffer("slot_order", torch.tensor(slots).argsort())
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, len(partitions)))
        # (out_channels, 2): on the diagonal, off the diagonal (the S_N-invariant matrices).
        self.bias = nn.Parameter(torch.zeros(out_channels, 2)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`U(-b, b)`, :math:`b = 1/\\sqrt{15\\, C_\\text{in}}`; zero bias."""
        bound = (self.weight.shape[-1] * self.in_channels) ** -0.5
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()

    @property
    def pool_type(self) -> str:
        return self.pool.value

    def _pattern_weights(self) -> Tensor:
        """``(15, C_in, C_out)``: the operation coefficients, in ``_SLOTS`` order."""
        pattern = self.weight @ self.orbit_to_pattern.to(self.weight.dtype).T  # (Co, Ci, 15)
        return pattern[:, :, self.slot_order].permute(2, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        _check_grid_input(x, self.weight, self.in_channels, layout="(B, N, N, C)")
        if x.shape[1] != x.shape[2]:
            raise ValueError(
                f"x must be square in its node axes (B, N, N, C); got {tuple(x.shape)}"
            )
        n = x.shape[1]
        scale = 1.0 / n if self.pool is PoolType.MEAN and n > 0 else 1.0
        w = self._pattern_weights()  # (15, Ci, Co)
        c_out = self.out_channels

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

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"pool_type={self.pool_type!r}, bias={self.bias is not None}, basis_size=15"
        )


class ExchangeableLayer(nn.Module):
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
        - ``x``: ``(B, N1, N2, in_channels)``.
        - ``mask``: ``(B, N1, N2)`` bool, or float weights ``>= 0``, optional.
        - output: ``(B, N1, N2, out_channels)``.

    Args:
        in_channels: features per entry in.
        out_channels: features per entry out.
        pool_type: ``"mean"`` (Hartford et al.) or ``"sum"``.
        bias: learn a bias (the only invariant matrix is constant).

    Parameters: ``4 · in_channels · out_channels + out_channels``.

    Reference:
        Hartford, Graham, Leyton-Brown, Ravanbakhsh, *Deep Models of Interactions Across
        Sets*, ICML 2018, https://arxiv.org/abs/1803.02879
    """

    orbit_to_pattern: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        pool_type: str = "mean",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = check_dim(in_channels, name="in_channels")
        self.out_channels = check_dim(out_channels, name="out_channels")
        self.pool = _linear_pool(pool_type)
        factor = _inverse_pattern_matrix(list(set_partitions(2)))  # (identity, all-ones)
        self.register_buffer("orbit_to_pattern", torch.kron(factor, factor))
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 4))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`U(-b, b)`, :math:`b = 1/\\sqrt{4\\, C_\\text{in}}`; zero bias."""
        bound = (4 * self.in_channels) ** -0.5
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()

    @property
    def pool_type(self) -> str:
        return self.pool.value

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        _check_grid_input(x, self.weight, self.in_channels, layout="(B, N1, N2, C)")
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

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"pool_type={self.pool_type!r}, bias={self.bias is not None}, basis_size=4"
        )


class CyclicConvLayer(nn.Module):
    r"""The linear :math:`C_n`-equivariant layer: a full circular convolution.

    .. math::

        y_{i c} = \sum_{t=0}^{n-1} \sum_{c'} w_{c c' t}\, x_{(i - t) \bmod n,\, c'} + b_c

    The weight holds the coordinates of the circulant basis of
    ``intertwiner_basis(CyclicAction(n), CyclicAction(n))`` (basis :math:`t` is the
    :math:`t`-th wrapped diagonal), so the layer equals ``EquivariantLinear`` with the same
    weight; it runs as a product of FFTs in :math:`O(B\, n \log n\, C_\text{in} C_\text{out})`.

    Shapes:
        - ``x``: ``(B, n, in_channels)``.
        - output: ``(B, n, out_channels)``.

    Args:
        n: length of the periodic signal.
        in_channels: features per position in.
        out_channels: features per position out.
        bias: learn a bias (constant over positions, the only invariant vector).

    Parameters: ``n · in_channels · out_channels + out_channels``.

    Reference:
        Cohen, Welling, *Group Equivariant Convolutional Networks*, ICML 2016,
        https://arxiv.org/abs/1602.07576
    """

    def __init__(self, n: int, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__()
        self.n = check_dim(n, name="n")
        self.in_channels = check_dim(in_channels, name="in_channels")
        self.out_channels = check_dim(out_channels, name="out_channels")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, n))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`U(-b, b)`, :math:`b = 1/\\sqrt{n\\, C_\\text{in}}`; zero bias."""
        bound = (self.n * self.in_channels) ** -0.5
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() != 3 or x.shape[1] != self.n or x.shape[2] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, n, in_channels) = (B, {self.n}, {self.in_channels}); "
                f"got {tuple(x.shape)}"
            )
        _check_float_like(x, self.weight)
        if x.shape[0] == 0:  # no signal: the FFT of an empty batch is not defined everywhere
            out = x.new_zeros(0, self.n, self.out_channels)
            return out if self.bias is None else out + self.bias
        x_hat = torch.fft.rfft(x, dim=1)  # (B, F, Ci)
        w_hat = torch.fft.rfft(self.weight.to(x.dtype), dim=2)  # (Co, Ci, F)
        y_hat = torch.einsum("bfi,oif->bfo", x_hat, w_hat)  # (B, F, Co)
        out = torch.fft.irfft(y_hat, n=self.n, dim=1)  # (B, n, Co)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"bias={self.bias is not None}, basis_size={self.n}"
        )
