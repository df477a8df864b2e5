r"""The general equivariant linear layer: register the coordinates, expand the matrix."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .._validation import check_like
from .action_config import action_from_config
from .actions import GroupAction
from .basis import DEFAULT_MAX_BYTES, intertwiner_basis, invariant_basis
from .contract import EquivariantModule

__all__ = ["EquivariantLinear"]


def _check_action(action: object, *, name: str) -> GroupAction:
    if isinstance(action, Mapping):  # as saved in config.json
        return action_from_config(action)
    if not isinstance(action, GroupAction):
        raise TypeError(
            f"{name} must be a deepsets.equivariance GroupAction (e.g. SymmetricAction(n)); "
            f"got {type(action).__name__}"
        )
    return action


class EquivariantLinear(nn.Module, EquivariantModule):
    r"""A linear layer equivariant to any group action, by weight sharing.

    With a basis :math:`B_1, \dots, B_K` of the equivariant maps
    (:func:`~deepsets.equivariance.intertwiner_basis`) the layer computes

    .. math::

        y_{p c} = \sum_{q, c'} \Big(\sum_{k=1}^{K} w_{c c' k}\, (B_k)_{p q}\Big) x_{q c'}
                  + \sum_{j} b_{c j}\, (u_j)_p,

    so :math:`y(\rho_\text{in}(g) x) = \rho_\text{out}(g)\, y(x)` for every group element
    :math:`g`. Only :math:`w` (``(output_dim, input_dim, K)``) and :math:`b` are
    parameters; the bias lives in the span of the invariant vectors :math:`u_j` of the output
    action (a bias outside it would break equivariance). The forward pass expands the dense
    matrix and multiplies, the recipe of the blog post "Permutation-equivariant neural
    networks for power spectrum estimation"; for large spaces use the structured
    layers (:class:`SecondOrderEquivariantLayer`, :class:`ExchangeableLayer`,
    :class:`CyclicConvLayer`, :class:`deepsets.PermutationEquivariantLayer`), which compute
    the same function without the dense matrix.

    Shapes:
        - ``x``: ``(B, in_action.dim, input_dim)`` — the action's axes flattened row-major
          (``x.flatten(1, -2)`` for a ``(B, N, N, C)`` tensor).
        - output: ``(B, out_action.dim, output_dim)``.

    Args:
        in_action: the group action on the input space (or its ``to_config()`` dict).
        out_action: the action of the same group on the output space (or its dict).
        input_dim: features per input coordinate.
        output_dim: features per output coordinate.
        bias: learn an equivariant bias.
        method: how to find the basis, see :func:`~deepsets.equivariance.intertwiner_basis`.
        max_bytes: memory cap for the basis.

    Parameters: ``output_dim · input_dim · K`` (+ ``output_dim · K_bias``). For sets of
    512 elements and 2 → 4 channels: ``4 · 2 · 2 + 4 = 20``, where a dense
    ``nn.Linear`` (:meth:`export`) has 2,099,200.

    Reference:
        Ravanbakhsh, Schneider, Póczos, *Equivariance Through Parameter-Sharing*, ICML 2017,
        https://arxiv.org/abs/1702.08389; Weiler et al., *Equivariant and Coordinate
        Independent CNNs*, 2023, https://arxiv.org/abs/2106.06020
    """

    basis: Tensor
    bias_basis: Tensor | None

    def __init__(
        self,
        in_action: GroupAction,
        out_action: GroupAction,
        input_dim: int = 1,
        output_dim: int = 1,
        bias: bool = True,
        *,
        method: str = "auto",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        super().__init__()
        self.in_action = _check_action(in_action, name="in_action")
        self.out_action = _check_action(out_action, name="out_action")
        self._set_widths(input_dim, output_dim)
        basis = intertwiner_basis(
            self.in_action, self.out_action, method=method, max_bytes=max_bytes
        )
        self.register_buffer("basis", basis)  # (K, d_out, d_in)
        self.weight = nn.Parameter(torch.empty(output_dim, input_dim, basis.shape[0]))
        if bias:
            bias_basis = invariant_basis(self.out_action, max_bytes=max_bytes)  # (K_bias, d_out)
            self.register_buffer("bias_basis", bias_basis)
            self.bias: nn.Parameter | None = nn.Parameter(
                torch.empty(output_dim, bias_basis.shape[0])
            )
        else:
            self.register_buffer("bias_basis", None)
            self.bias = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform coordinates, every basis map contributing alike; zero bias.

        Coordinate :math:`k` is drawn from :math:`U(-b_k, b_k)` with
        :math:`b_k = 1 / \\sqrt{C_\\text{in} K r_k}` and :math:`r_k` the largest squared row
        norm of :math:`B_k`, so an output's variance stays near that of ``nn.Linear``.
        """
        rows = self.basis.pow(2).sum(dim=2).amax(dim=1).clamp_min(1.0)  # (K,)
        bound = (self.input_dim * self.basis.shape[0] * rows).rsqrt()
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0).mul_(bound)
            if self.bias is not None:
                self.bias.zero_()

    @property
    def basis_size(self) -> int:
        """:math:`K`, the number of independent equivariant maps."""
        return int(self.basis.shape[0])

    @property
    def dense_numel(self) -> int:
        """Parameters of the equivalent dense ``nn.Linear`` (:meth:`export`)."""
        d_out = self.out_action.dim * self.output_dim
        return d_out * self.in_action.dim * self.input_dim + (0 if self.bias is None else d_out)

    def expand_parameters(self) -> Tensor:
        """The dense weight ``(d_out · output_dim, d_in · input_dim)`` on flattened input.

        Row ``p · output_dim + c`` and column ``q · input_dim + c'`` hold
        :math:`\\sum_k w_{c c' k} (B_k)_{p q}`. Differentiable in :attr:`weight`.
        """
        dense = torch.einsum("abk,kpq->paqb", self.weight, self.basis)  # (d_out, C_out, d_in, C_in)
        return dense.reshape(self.out_action.dim * self.output_dim, -1)

    def expand_bias(self) -> Tensor | None:
        """The dense bias ``(d_out · output_dim,)``, or ``None`` without bias."""
        if self.bias is None or self.bias_basis is None:
            return None
        return torch.einsum("cj,jp->pc", self.bias, self.bias_basis).reshape(-1)

    def forward(self, x: Tensor) -> Tensor:
        d_in = self.in_action.dim
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() != 3 or x.shape[1] != d_in or x.shape[2] != self.input_dim:
            raise ValueError(
                f"x must have shape (B, {d_in}, {self.input_dim}) = (batch, {self.in_action!r} "
                f"flattened, input_dim); got {tuple(x.shape)}. Flatten natural axes with "
                "x.flatten(1, -2)."
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
        check_like(x, self.weight, name="x", what="the layer")
        flat = x.reshape(x.shape[0], d_in * self.input_dim)  # (B, d_in·C_in)
        out = nn.functional.linear(flat, self.expand_parameters(), self.expand_bias())
        return out.view(x.shape[0], self.out_action.dim, self.output_dim)  # (B, d_out, C_out)

    def example_shape(self, size: int | tuple[int, ...] | None = None) -> tuple[int, ...]:
        """``(in_action.dim, input_dim)``; the size is fixed by the action."""
        if size is not None:
            raise ValueError(f"size is fixed by in_action = {self.in_action!r}; got {size!r}")
        return (self.in_action.dim, self.input_dim)

    def export(self, size: int | tuple[int, ...] | None = None) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function on ``x.flatten(1)``.

        ``size`` must be ``None``: the action fixes it. The weight is the exact expansion
        :meth:`expand_parameters`.
        """
        self.example_shape(size)
        weight = self.expand_parameters().detach()
        linear = nn.Linear(
            weight.shape[1],
            weight.shape[0],
            bias=self.bias is not None,
            dtype=weight.dtype,
            device=weight.device,
        )
        with torch.no_grad():
            linear.weight.copy_(weight)
            bias = self.expand_bias()
            if bias is not None and linear.bias is not None:
                linear.bias.copy_(bias.detach())
        return linear

    def extra_repr(self) -> str:
        bias = 0 if self.bias is None else self.bias.shape[1]
        return (
            f"{self.in_action!r} -> {self.out_action!r}, input_dim={self.input_dim}, "
            f"output_dim={self.output_dim}, basis_size={self.basis_size}, "
            f"bias_size={bias}, parameters={self.weight_numel:,} "
            f"(dense: {self.dense_numel:,}, {self.dense_numel / max(self.weight_numel, 1):,.0f}x)"
        )
