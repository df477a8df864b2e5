r"""The models of the max-regression experiment, as in the authors' code
(juho-lee/set_transformer, ``max_regression_demo.ipynb``), built from the library's modules.

* **rFF + pooling** — :class:`~deepsets.DeepSetsInvariant` with φ four ``Linear(64)``
  layers, a masked mean, sum or max, and ρ ``Linear(64) → ReLU → Linear(1)``:
  :math:`f(X) = \rho(\mathrm{pool}_{x \in X} \varphi(x))`.
* **SAB + PMA** — :class:`~deepsets.SetTransformer` with two SABs of width 64 (4 heads),
  PMA with one seed vector, no decoder SAB, and a linear head:
  :math:`f(X) = \mathrm{Linear}(\mathrm{PMA}_1(\mathrm{SAB}(\mathrm{SAB}(X))))`.

Reference:
    Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
"""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from ... import DeepSetsInvariant, SetTransformer
from ..._validation import resolve_option
from .data import Row

__all__ = ["SetTransformerRegressor", "build_model", "parameter_count"]

_POOLS = {Row.MEAN: "mean", Row.SUM: "sum", Row.MAX: "max"}


class SetTransformerRegressor(nn.Module):
    """A :class:`~deepsets.SetTransformer` with one seed vector, its output ``(B, 1, D)``
    squeezed to ``(B, D)`` as the training engine's regression targets are.

    Shapes: ``x (B, M, input_dim)``, ``mask (B, M)`` → ``(B, output_dim)``.
    """

    def __init__(self, network: SetTransformer) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return cast(Tensor, self.network(x, mask)).squeeze(1)  # (B, output_dim)


def build_model(row: str, *, width: int = 64, num_heads: int = 4) -> nn.Module:
    """The network of a Table 1 row (``rff-mean``, ``rff-sum``, ``rff-max``, ``sab-pma``).

    Shapes: ``x (B, M, 1)``, ``mask (B, M)`` → ``(B, 1)``.
    """
    kind = resolve_option(row, Row, name="row")
    if kind is Row.SAB_PMA:
        network = SetTransformer(
            1,
            1,
            hidden_dim=width,
            num_heads=num_heads,
            num_inducing=None,
            num_encoder_blocks=2,
            num_seeds=1,
            num_decoder_blocks=0,
        )
        return SetTransformerRegressor(network)
    return DeepSetsInvariant(1, [width] * 4, [width], 1, pool_type=_POOLS[kind])


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
