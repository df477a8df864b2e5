r"""The two classical baselines of the power-spectrum experiment, as estimators.

* the prior: :math:`E[\log p_k] = -2\log k - \gamma` whatever the data (its MSE is
  :math:`\pi^2/6` per frequency: a model that does not beat it has learned nothing);
* the least-squares Fourier fit up to ``K`` frequencies, then :math:`\log(a_k^2 + b_k^2)`.

Each estimator is an object with ``predict(x, y) -> (B, k_fin)`` (see
:class:`~deepsets.experiments.power_spectrum.evaluate.Estimator`), so the evaluation takes
it without knowing what it is.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "EULER_GAMMA",
    "PRIOR_MSE",
    "LeastSquaresEstimator",
    "PriorEstimator",
    "least_squares_log_power",
    "prior_log_power",
]


#: The Euler–Mascheroni constant γ: :math:`E[\log p] = \log(\text{mean}) - \gamma` for an
#: exponential variable.
EULER_GAMMA = 0.5772156649015329


def prior_log_power(k_fin: int, batch: int = 1, device: torch.device | str = "cpu") -> Tensor:
    r"""The prior's estimate :math:`E[\log p_k] = -2\log k - \gamma`: ``(batch, k_fin)``.

    Its expected squared error is :math:`\mathrm{Var}[\log p_k] = \pi^2/6` at every k.
    """
    k = torch.arange(1, k_fin + 1, device=device, dtype=torch.float32)
    return (-2.0 * k.log() - EULER_GAMMA).expand(batch, k_fin)


def least_squares_log_power(
    x: Tensor, y: Tensor, k_fit: int, k_fin: int, *, floor: float = 1e-12
) -> Tensor:
    r"""The classical estimator: fit :math:`c + \sum_{k\le K} a_k\cos kx + b_k \sin kx`
    to the samples by least squares, then :math:`\log(a_k^2 + b_k^2)`.

    Exact on noiseless data with ``k_fit ≥ k_max`` and enough distinct points
    (``N ≥ 2 k_fit + 1``); frequencies above ``k_fit`` alias into the fit.

    Shapes:
        ``x``, ``y``: ``(B, N)`` → ``(B, k_fin)`` (requires ``k_fin ≤ k_fit``).
    """
    if k_fin > k_fit:
        raise ValueError(f"k_fin must be <= k_fit; got k_fin={k_fin}, k_fit={k_fit}")
    xd, yd = x.double(), y.double()
    k = torch.arange(1, k_fit + 1, device=x.device, dtype=torch.float64)
    angle = xd.unsqueeze(-1) * k  # (B, N, K)
    design = torch.cat([torch.ones_like(xd).unsqueeze(-1), angle.cos(), angle.sin()], dim=-1)
    coef = torch.linalg.lstsq(design, yd.unsqueeze(-1)).solution.squeeze(-1)  # (B, 2K+1)
    a, b = coef[:, 1 : k_fit + 1], coef[:, k_fit + 1 :]
    power = (a.square() + b.square())[:, :k_fin]
    return power.clamp_min(floor).log().float()


#: :math:`\mathrm{Var}[\log p] = \pi^2/6` for an exponential ``p``: the prior's MSE.
PRIOR_MSE = math.pi**2 / 6


class PriorEstimator:
    """The prior's estimate for every set: ``predict(x, y) -> (B, k_fin)``."""

    def __init__(self, k_fin: int) -> None:
        self.k_fin = k_fin

    def predict(self, x: Tensor, y: Tensor) -> Tensor:
        """:func:`prior_log_power` for the ``B`` sets of ``x (B, N)``."""
        return prior_log_power(self.k_fin, x.shape[0], device=x.device)

    def __repr__(self) -> str:
        return f"PriorEstimator(k_fin={self.k_fin})"


class LeastSquaresEstimator:
    """The least-squares Fourier fit up to ``k_fit``: ``predict(x, y) -> (B, k_fin)``."""

    def __init__(self, k_fit: int, k_fin: int) -> None:
        if k_fin > k_fit:
            raise ValueError(f"k_fin must be <= k_fit; got k_fin={k_fin}, k_fit={k_fit}")
        self.k_fit = k_fit
        self.k_fin = k_fin

    def predict(self, x: Tensor, y: Tensor) -> Tensor:
        """:func:`least_squares_log_power` of the samples ``x, y (B, N)``."""
        return least_squares_log_power(x, y, self.k_fit, self.k_fin)

    def __repr__(self) -> str:
        return f"LeastSquaresEstimator(k_fit={self.k_fit}, k_fin={self.k_fin})"
