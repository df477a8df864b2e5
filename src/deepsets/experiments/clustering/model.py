r"""The networks of the amortized-clustering experiment, and a network as an estimator.

Each network reads a set of points and outputs ``K`` rows of 4 numbers, one per mixture
component, read as in the authors' code (juho-lee/set_transformer, ``mvn_diag.py``):

.. math::

    \pi = \mathrm{softmax}(r_{\cdot,0}), \quad \mu_k = (r_{k,1}, r_{k,2}), \quad
    \sigma_k = \mathrm{softplus}(r_{k,3}) + \epsilon

(one isotropic :math:`\sigma_k` per component; :math:`\epsilon = 10^{-4}` keeps the
likelihood finite, where the authors' code has none). The three networks of Table 3 of
the Set Transformer paper, widths 128 as in the authors' ``models.py``:

* ``rff`` — rFF + pooling: :class:`~deepsets.DeepSetsInvariant` with a 4-layer φ, mean
  pooling and a 4-layer ρ (the code's ``DeepSet``);
* ``rffp_mean`` — rFFp-mean + pooling: φ is 4 permutation-equivariant layers of Deep Sets
  (:class:`~deepsets.PermutationEquivariantLayer`, mean pooling), then mean pooling and
  the same ρ (:class:`EquivariantMeanNet`);
* ``isab_pma`` — ISAB(16) + PMA: :class:`~deepsets.attention.SetTransformer` with two
  ISABs of 16 inducing points, PMA with ``K`` seeds, two SABs and a linear layer, 4 heads,
  no LayerNorm (the code's ``SetTransformer``).

Reference:
    Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ... import DeepSetsInvariant
from ..._validation import check_dim, resolve_option
from ...attention import SetTransformer
from ...functional import masked_pool
from ...layers import equivariant_stack, mlp
from .data import Architecture, MixtureBatch, MixtureParams

__all__ = [
    "EquivariantMeanNet",
    "MixtureEstimator",
    "build_model",
    "parameter_count",
    "parse_output",
]

#: Outputs per component: logit of the weight, mean (2), raw σ.
PARAMS_PER_COMPONENT = 4
SIGMA_FLOOR = 1e-4


class EquivariantMeanNet(nn.Module):
    r"""rFFp-mean + pooling: permutation-equivariant layers, mean pooling, an MLP.

    .. math::

        h^{(j)}_i = \mathrm{ReLU}\big(\Lambda_j h^{(j-1)}_i + \Gamma_j \bar h^{(j-1)} + b_j\big),
        \quad f(X) = \rho\Big(\frac1n \sum_i h^{(L)}_i\Big)

    (no ReLU after the last layer, as the last Linear of the authors' φ).

    Shapes:
        - ``x``: ``(B, M, input_dim)``; ``mask``: ``(B, M)`` optional
        - output: ``(B, output_dim)``

    Args:
        input_dim: features per element.
        width: channels of every layer.
        depth: equivariant layers.
        rho_depth: hidden layers of ρ.
        output_dim: outputs.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    def __init__(
        self, input_dim: int, *, width: int, depth: int, rho_depth: int, output_dim: int
    ) -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        self.width = check_dim(width, name="width")
        self.depth = check_dim(depth, name="depth")
        self.output_dim = check_dim(output_dim, name="output_dim")
        widths = [input_dim] + [width] * depth
        self.layers = equivariant_stack(widths, "mean")
        self.rho = mlp(width, [width] * rho_depth, output_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h = x  # (B, M, D)
        for j, layer in enumerate(self.layers):
            h = layer(h, mask)  # (B, M, width)
            if j + 1 < len(self.layers):
                h = torch.relu(h)
        return self.rho(masked_pool(h, "mean", mask))  # (B, output_dim)

    def extra_repr(self) -> str:
        return f"width={self.width}, depth={self.depth}, output_dim={self.output_dim}"


class _Components(nn.Module):
    """Reshape a model's flat output ``(B, K·P)`` to ``(B, K, P)``."""

    def __init__(self, net: nn.Module, components: int) -> None:
        super().__init__()
        self.net = net
        self.components = components

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.net(x, mask).unflatten(-1, (self.components, PARAMS_PER_COMPONENT))

    def extra_repr(self) -> str:
        return f"components={self.components}"


def build_model(
    architecture: str, *, components: int = 4, width: int = 128, num_inducing: int = 16
) -> nn.Module:
    """The network ``architecture`` (``rff``, ``rffp_mean`` or ``isab_pma``) for points
    in the plane: ``model(x (B, M, 2), mask (B, M)) -> (B, components, 4)``."""
    kind = resolve_option(architecture, Architecture, name="architecture")
    out = components * PARAMS_PER_COMPONENT
    if kind is Architecture.ISAB_PMA:
        return SetTransformer(
            2,
            PARAMS_PER_COMPONENT,
            hidden_dim=width,
            num_heads=4,
            num_inducing=num_inducing,
            num_seeds=components,
        )
    if kind is Architecture.RFF:
        net: nn.Module = DeepSetsInvariant(2, [width] * 4, [width] * 3, out, pool_type="mean")
    else:
        net = EquivariantMeanNet(2, width=width, depth=4, rho_depth=3, output_dim=out)
    return _Components(net, components)


def parse_output(raw: Tensor) -> MixtureParams:
    """The mixture of a network's output ``(B, K, 4)`` (module docstring)."""
    return MixtureParams(
        log_weights=torch.log_softmax(raw[..., 0], dim=-1),
        means=raw[..., 1:3],
        sigma=nn.functional.softplus(raw[..., 3]) + SIGMA_FLOOR,
    )


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class MixtureEstimator:
    """A trained network as an estimator: ``predict(batch)`` is the mixture it outputs for
    every set of a :class:`~deepsets.experiments.clustering.data.MixtureBatch` (padded
    points and mask), computed on the network's device."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    def predict(self, batch: MixtureBatch) -> MixtureParams:
        """The network's mixture for every set of the batch."""
        with torch.no_grad():
            raw = self.model(batch.x.to(self.device), batch.mask.to(self.device))
            return parse_output(raw.cpu())

    def __repr__(self) -> str:
        return f"MixtureEstimator({type(self.model).__name__})"
