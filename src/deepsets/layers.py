"""Building blocks: the per-element MLP and the permutation-equivariant layer (Lemma 3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

from torch import Tensor, nn

from ._base import SetModule
from ._validation import PoolType, check_dim
from ._validation import resolve_option as _resolve
from .equivariance.contract import EquivariantModule, fixed_size
from .functional.padded import _pool, active_elements
from .functional.segment import JaggedParts, jagged_like, jagged_parts, pool_parts

__all__ = ["PermutationEquivariantLayer", "equivariant_stack", "mlp"]


def mlp(
    in_dim: int,
    hidden_dims: Sequence[int],
    out_dim: int | None = None,
    *,
    dropout: float = 0.0,
    activation: Callable[[], nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """A stack of ``Linear → activation (→ Dropout)`` blocks, one per hidden width.

    With ``out_dim`` a final ``Linear`` without activation follows (a head, like ρ);
    without it every layer is followed by the activation (an encoder, like φ). An empty
    ``hidden_dims`` and no ``out_dim`` gives an empty ``Sequential`` — the identity.
    ``activation`` makes one module per layer (``nn.ReLU`` by default; a smooth one such
    as ``nn.SiLU`` fits smooth targets more closely).

    Shapes:
        ``(..., in_dim) -> (..., out_dim or hidden_dims[-1] or in_dim)``
    """
    if not callable(activation):
        raise TypeError(f"activation must make a module, e.g. nn.ReLU; got {activation!r}")
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def mlp_width(in_dim: int, hidden_dims: Sequence[int], out_dim: int | None = None) -> int:
    """The output width of :func:`mlp` with the same arguments."""
    if out_dim is not None:
        return out_dim
    return hidden_dims[-1] if len(hidden_dims) else in_dim


class PermutationEquivariantLayer(SetModule, EquivariantModule):
    r"""A permutation-equivariant linear layer (Zaheer et al. 2017, Lemma 3).

    .. math::

        f(X)_i = \Lambda x_i + \Gamma\, \mathrm{pool}(X) + b

    Every element is mapped by the same :math:`\Lambda` (``lambda_net``, with the bias
    :math:`b`) plus a term shared by the whole set, :math:`\Gamma` (``gamma_net``, no bias)
    applied to a symmetric pool of the set. Permuting the input permutes the output the
    same way. With ``pool_type="mean"`` the layer is equation (3) of the blog post
    "Permutation-equivariant neural networks for power spectrum estimation", and a set
    repeated ``k`` times gives the same output per element.

    Shapes:
        - ``x``: ``(B, M, input_dim)``, or a jagged nested tensor ``(B, j, input_dim)``
        - ``mask``: ``(B, M)`` bool, or float weights ``>= 0``, optional (jagged ``(B, j)``
          for a nested ``x``)
        - output: ``(B, M, output_dim)`` (jagged ``(B, j, output_dim)`` for a nested ``x``);
          padded positions (weight 0) hold exactly 0.

    Args:
        input_dim: features per element in.
        output_dim: features per element out.
        pool_type: ``"max"``, ``"sum"`` or ``"mean"``.

    Parameters: ``2 · input_dim · output_dim + output_dim``
    (2 → 4 channels: 20, as in the power-spectrum study).

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    def __init__(self, input_dim: int, output_dim: int, pool_type: str = "max") -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        self.output_dim = check_dim(output_dim, name="output_dim")
        self.pool = _resolve(pool_type, PoolType, name="pool_type")
        self.lambda_net = nn.Linear(input_dim, output_dim)
        self.gamma_net = nn.Linear(input_dim, output_dim, bias=False)

    def _forward_packed(self, x: Tensor, mask: Tensor | None) -> Tensor:
        parts = jagged_parts(x, mask)
        return jagged_like(self.equivariant_map_packed(parts.values, parts), x)

    def _forward_padded(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if mask is None:
            return self.equivariant_map(x)
        active = active_elements(mask)
        return self.equivariant_map(x.masked_fill(~active.unsqueeze(-1), 0.0), mask, active)

    def equivariant_map(
        self, x: Tensor, mask: Tensor | None = None, active: Tensor | None = None
    ) -> Tensor:
        """Unchecked forward; with a mask, ``x`` must already be 0 at padded positions."""
        pooled = _pool(x, self.pool, mask, keepdim=True, active=active, clean=True)  # (B, 1, D)
        out = self.lambda_net(x) + self.gamma_net(pooled)  # (B, M, D_out)
        if active is not None:
            out = out.masked_fill(~active.unsqueeze(-1), 0.0)
        return out

    def equivariant_map_packed(self, values: Tensor, parts: JaggedParts) -> Tensor:
        """Unchecked forward on packed rows ``(N, input_dim) -> (N, output_dim)``.

        ``parts`` gives the set structure; rows of weight 0 must already be 0.
        """
        pooled = pool_parts(values, self.pool, parts, clean=True)  # (S, D)
        out = self.lambda_net(values) + self.gamma_net(pooled).index_select(0, parts.set_index)
        if parts.active is not None:
            out = out.masked_fill(~parts.active.unsqueeze(-1), 0.0)
        return out

    def example_shape(self, size: int | tuple[int, ...] | None = None) -> tuple[int, ...]:
        """``(n, input_dim)`` for ``size = n`` elements."""
        if self.pool is PoolType.MAX:
            raise ValueError(
                "export needs a linear layer: pool_type='max' is not linear; "
                "use pool_type='sum' or 'mean'"
            )
        (n,) = fixed_size(size, 1, what="n, the set size")
        return (n, self.input_dim)

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, output_dim={self.output_dim}, "
            f"pool_type={self.pool_type!r}"
        )


def equivariant_stack(widths: Sequence[int], pool_type: str | PoolType) -> nn.ModuleList:
    """``PermutationEquivariantLayer(w_in, w_out, pool_type)`` for each consecutive pair of
    ``widths`` (the layers of an equivariant network; the caller adds the activations)."""
    return nn.ModuleList(
        PermutationEquivariantLayer(w_in, w_out, pool_type) for w_in, w_out in pairwise(widths)
    )
