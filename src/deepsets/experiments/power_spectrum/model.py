r"""The networks of the power-spectrum experiment, their parameter counts, and a network
as an estimator.

- :class:`PowerSpectrumNet` is the network of the blog post "Permutation-equivariant neural
  networks for power spectrum estimation" (its eq. 3), built from the library's
  :class:`~deepsets.PermutationEquivariantLayer` and :func:`~deepsets.functional.masked_pool`
  (the reproduction);
- :class:`GenericSpectrumNet` (Fourier features + MLPs φ, ρ) and
  :class:`StructuredSpectrumNet` (pooled second moments + a learned-regularised solve in
  ρ) are the study's two designs for the regimes, built from
  :class:`~deepsets.FourierFeatures`, :func:`~deepsets.functional.pooled_outer` and
  :func:`~deepsets.layers.mlp`. Both take ``raw`` features ``(x, y)``.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from ... import PermutationEquivariantLayer
from ..._validation import check_dim, resolve_option
from ...functional import masked_pool
from ...layers import equivariant_stack
from .data import ENCODINGS, Design, Encoding, encode
from .designs import GenericSpectrumNet, StructuredSpectrumNet

__all__ = [
    "GenericSpectrumNet",
    "NetworkEstimator",
    "PowerSpectrumNet",
    "StructuredSpectrumNet",
    "build_design",
    "build_model",
    "dense_parameter_count",
    "parameter_comparison",
    "parameter_count",
]


class PowerSpectrumNet(nn.Module):
    r"""The study's network: ``depth`` mean-pooled equivariant layers, mean, dense head.

    .. math::

        h^{(0)}_n = e(x_n, y_n), \quad
        h^{(j)}_n = \mathrm{ReLU}\big(\Lambda_j h^{(j-1)}_n + \Gamma_j \bar h^{(j-1)} + b_j\big),
        \quad \hat y = W\, \frac1N \sum_n h^{(D)}_n + c

    with :math:`\bar h` the mean over the set (eq. 3 of the study). Built from
    :class:`~deepsets.PermutationEquivariantLayer` (``pool_type="mean"``),
    :func:`~deepsets.functional.masked_pool` and ``nn.Linear``; the parameter count is
    the study's :math:`(2K_{in}+1)K_h + (D-1)(2K_h^2+K_h) + (K_h+1)K_{fin}`.

    Shapes:
        - ``features``: ``(B, N, input_dim)``; ``mask``: ``(B, N)`` optional
        - output: ``(B, k_fin)`` estimates of :math:`\log p_k`

    Args:
        input_dim: features per element (2 for ``raw``, 3 for ``circle``).
        depth: number of equivariant layers ``D`` (≥ 1).
        width: channels per element ``K_hide``.
        k_fin: number of predicted frequencies.

    Reference:
        Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
    """

    def __init__(self, input_dim: int, *, depth: int, width: int, k_fin: int) -> None:
        super().__init__()
        self.input_dim = check_dim(input_dim, name="input_dim")
        self.depth = check_dim(depth, name="depth")
        self.width = check_dim(width, name="width")
        self.k_fin = check_dim(k_fin, name="k_fin")
        widths = [input_dim] + [width] * depth
        self.layers = equivariant_stack(widths, "mean")
        self.activation = nn.ReLU()
        self.head = nn.Linear(width, k_fin)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        h = features  # (B, N, d)
        for layer in self.layers:
            h = self.activation(layer(h, mask))  # (B, N, width)
        return self.head(masked_pool(h, "mean", mask))  # (B, k_fin)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}, k_fin={self.k_fin}"


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def dense_parameter_count(set_size: int, widths: list[int], k_fin: int | None = None) -> int:
    """Parameters of the dense network that treats the flattened set as one vector.

    Every equivariant layer ``a → b`` becomes a dense ``N·a → N·b`` layer with ``N·b``
    biases; with ``k_fin`` the head becomes a dense ``N·widths[-1] → k_fin`` layer.
    ``dense_parameter_count(512, [2, 4]) == 2_099_200``, the study's footnote 3.
    """
    n = set_size
    total = sum(n * a * n * b + n * b for a, b in itertools.pairwise(widths))
    if k_fin is not None:
        total += n * widths[-1] * k_fin + k_fin
    return total


def build_model(encoding: str, *, depth: int, width: int, k_fin: int) -> PowerSpectrumNet:
    """The study's network for ``encoding`` (``raw``: 2 inputs, ``circle``: 3)."""
    kind = resolve_option(encoding, Encoding, name="encoding")
    return PowerSpectrumNet(ENCODINGS[kind.value], depth=depth, width=width, k_fin=k_fin)


def build_design(
    design: str,
    *,
    k_fin: int,
    num_frequencies: int,
    hidden: list[int],
    rho_hidden: list[int] | None = None,
) -> nn.Module:
    """The network of ``design``: ``generic`` (ρ widths ``rho_hidden``, default
    ``hidden``) or ``structured`` (head widths ``hidden``), with
    ``num_frequencies`` Fourier features. Both take ``raw`` features ``(B, N, 2)``."""
    kind = resolve_option(design, Design, name="design")
    if kind is Design.GENERIC:
        return GenericSpectrumNet(
            k_fin,
            num_frequencies=num_frequencies,
            rho_hidden_dims=hidden if rho_hidden is None else rho_hidden,
        )
    return StructuredSpectrumNet(k_fin, num_frequencies=num_frequencies, head_hidden_dims=hidden)


def parameter_comparison(set_size: int = 512) -> dict[str, int]:
    r"""Footnotes 3–4 of the blog post, counted on real modules (the dense one on the ``meta``
    device, so it costs no memory).

    A 2 → 4 channel :class:`~deepsets.PermutationEquivariantLayer` has
    :math:`2\cdot 4\cdot 2 + 4 = 20` parameters; a dense layer from ``N`` (x, y) pairs to
    ``N`` 4-vectors has :math:`(2N)(4N) + 4N` (2,099,200 at ``N = 512``).
    """
    equivariant = PermutationEquivariantLayer(2, 4, pool_type="mean")
    dense = nn.Linear(2 * set_size, 4 * set_size, device="meta")
    return {
        "set_size": set_size,
        "equivariant": parameter_count(equivariant),
        "dense": parameter_count(dense),
    }


class NetworkEstimator:
    """A trained network as an estimator: ``predict(x, y)`` encodes the samples and runs
    the network on its device.

    Shapes:
        ``x``, ``y``: ``(B, N)`` → ``(B, k_fin)``
    """

    def __init__(self, model: nn.Module, encoding: str | Encoding) -> None:
        self.model = model
        self.encoding = resolve_option(encoding, Encoding, name="encoding")
        self.device = next(model.parameters()).device

    def predict(self, x: Tensor, y: Tensor) -> Tensor:
        """The network's estimate of :math:`\\log p_k` for the sets ``(x, y)``."""
        with torch.no_grad():
            return self.model(encode(x.to(self.device), y.to(self.device), self.encoding))

    def __repr__(self) -> str:
        return f"NetworkEstimator({type(self.model).__name__}, encoding={self.encoding.value!r})"
