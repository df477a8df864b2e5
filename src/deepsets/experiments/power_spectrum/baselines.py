r"""The classical baselines of the power-spectrum experiment, as estimators.

* the prior: :math:`E[\log p_k] = -2\log k - \gamma` whatever the data (its MSE is
  :math:`\pi^2/6` per frequency: a model that does not beat it has learned nothing);
* the least-squares Fourier fit up to ``K`` frequencies, then :math:`\log(a_k^2 + b_k^2)`,
  optionally with a ridge penalty :math:`\lambda\lVert(a, b)\rVert^2` (the constant
  unpenalised); :func:`select_least_squares` chooses ``K`` and :math:`\lambda` on a
  validation draw, never on the test set (:class:`ValidatedLeastSquares`).

The Bayes-optimal floor is in :mod:`~deepsets.experiments.power_spectrum.bayes`.

Each estimator is an object with ``predict(x, y) -> (B, k_fin)`` (see
:class:`~deepsets.experiments.power_spectrum.evaluate.Estimator`), so the evaluation takes
it without knowing what it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .data import PowerSpectrumBatch

__all__ = [
    "EULER_GAMMA",
    "PRIOR_MSE",
    "LeastSquaresEstimator",
    "PriorEstimator",
    "ValidatedLeastSquares",
    "default_k_grid",
    "least_squares_log_power",
    "prior_log_power",
    "select_least_squares",
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


def _design(x: Tensor, k_fit: int) -> Tensor:
    """``[1, cos x, sin x, cos 2x, sin 2x, ...]`` in float64: the fit with ``K ≤ k_fit``
    frequencies uses the first ``2K + 1`` columns. ``(B, N) -> (B, N, 2·k_fit + 1)``."""
    xd = x.double()
    k = torch.arange(1, k_fit + 1, device=x.device, dtype=torch.float64)
    angle = xd.unsqueeze(-1) * k  # (B, N, K)
    pairs = torch.stack([angle.cos(), angle.sin()], -1).flatten(-2)  # (B, N, 2K)
    return torch.cat([torch.ones_like(xd).unsqueeze(-1), pairs], -1)


def _penalty(size: int, ridge: float, device: torch.device) -> Tensor:
    """``diag(0, λ, ..., λ)``: the ridge penalty, the constant unpenalised."""
    penalty = torch.full((size,), float(ridge), dtype=torch.float64, device=device)
    penalty[0] = 0.0
    return torch.diag(penalty)


def _log_power(coef: Tensor, k_fin: int, floor: float) -> Tensor:
    r""":math:`\log(a_k^2 + b_k^2)`, ``k ≤ k_fin``, of interleaved coefficients ``(B, P)``."""
    power = coef[:, 1 : 2 * k_fin + 1 : 2].square() + coef[:, 2 : 2 * k_fin + 2 : 2].square()
    return power.clamp_min(floor).log()


def least_squares_log_power(
    x: Tensor,
    y: Tensor,
    k_fit: int,
    k_fin: int,
    *,
    ridge: float = 0.0,
    floor: float = 1e-12,
    chunk: int = 64,
) -> Tensor:
    r"""The classical estimator: fit :math:`c + \sum_{k\le K} a_k\cos kx + b_k \sin kx`
    to the samples by least squares (plus :math:`\lambda\lVert(a, b)\rVert^2` with
    ``ridge`` :math:`= \lambda > 0`), then :math:`\log(a_k^2 + b_k^2)`.

    Exact on noiseless data with ``k_fit ≥ k_max`` and enough distinct points
    (``N ≥ 2 k_fit + 1``); frequencies above ``k_fit`` alias into the fit. With more
    unknowns than samples and no ridge it is the minimum-norm fit. Solved in float64,
    ``chunk`` sets at a time.

    Shapes:
        ``x``, ``y``: ``(B, N)`` → ``(B, k_fin)`` in ``x``'s dtype (requires
        ``k_fin ≤ k_fit``).
    """
    if k_fin > k_fit:
        raise ValueError(f"k_fin must be <= k_fit; got k_fin={k_fin}, k_fit={k_fit}")
    if not ridge >= 0:
        raise ValueError(f"ridge must be a number >= 0; got {ridge!r}")
    out = []
    for start in range(0, x.shape[0], chunk):
        design = _design(x[start : start + chunk], k_fit)  # (b, N, P)
        rhs = y[start : start + chunk].double().unsqueeze(-1)  # (b, N, 1)
        if ridge == 0:
            coef = torch.linalg.lstsq(design, rhs).solution  # (b, P, 1)
        else:
            gram = design.transpose(1, 2) @ design + _penalty(2 * k_fit + 1, ridge, x.device)
            coef = torch.linalg.solve(gram, design.transpose(1, 2) @ rhs)
        out.append(_log_power(coef.squeeze(-1), k_fin, floor))
    return torch.cat(out).to(x.dtype if x.is_floating_point() else torch.float32)


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


def default_k_grid(k_fin: int, set_size: int, k_max: int) -> list[int]:
    """Candidate numbers of fitted frequencies: ``k_fin``, a geometric grid (ratio √2) up to
    the largest full-rank fit ``(N − 1) // 2`` and that fit itself, capped at ``k_max``
    (frequencies the functions do not have cannot help)."""
    top = max(k_fin, min((set_size - 1) // 2, k_max))
    grid = {k_fin, top}
    k = float(k_fin)
    while k < top:
        grid.add(round(k))
        k *= 2**0.5
    return sorted(g for g in grid if k_fin <= g <= top)


def _candidate_errors(
    valid: PowerSpectrumBatch,
    k_fin: int,
    k_grid: Sequence[int],
    ridges: Sequence[float],
    chunk: int,
) -> dict[tuple[int, float], Tensor]:
    """Squared errors summed over sets, ``(k_fin,)``, of every ``(k_fit, ridge)`` on
    ``valid``: one Gram matrix per chunk of sets, the normal equations of each candidate on
    its leading block. Fits with more unknowns than samples need ``ridge > 0``."""
    target = valid.target(k_fin).double()
    sums: dict[tuple[int, float], Tensor] = {}
    for start in range(0, valid.x.shape[0], chunk):
        part = slice(start, start + chunk)
        design = _design(valid.x[part], max(k_grid))  # (b, N, P)
        gram = design.transpose(1, 2) @ design  # (b, P, P)
        moment = design.transpose(1, 2) @ valid.y[part].double().unsqueeze(-1)  # (b, P, 1)
        for k_fit in k_grid:
            size = 2 * k_fit + 1
            for ridge in ridges:
                if ridge == 0 and size > valid.x.shape[1]:
                    continue
                block = gram[:, :size, :size] + _penalty(size, ridge, gram.device)
                coef = torch.linalg.solve(block, moment[:, :size]).squeeze(-1)  # (b, size)
                error = (_log_power(coef, k_fin, 1e-12) - target[part]).square().sum(0)
                sums[(k_fit, ridge)] = sums.get((k_fit, ridge), 0) + error
    return sums


@dataclass
class ValidatedLeastSquares:
    """The least-squares (or ridge) fit whose ``k_fit`` and ``ridge`` were chosen on a
    validation draw: ``predict(x, y) -> (B, k_fin)``.

    Attributes:
        k_fit, ridge: the chosen fit.
        k_fin: frequencies estimated.
        valid_mse: its validation MSE (mean over ``k ≤ k_fin`` and the validation sets).
        table: the validation MSE of every candidate, keyed ``"K=..,ridge=.."``.
    """

    k_fit: int
    ridge: float
    k_fin: int
    valid_mse: float
    table: dict[str, float] = field(default_factory=dict)

    def predict(self, x: Tensor, y: Tensor) -> Tensor:
        """:func:`least_squares_log_power` with the chosen ``k_fit`` and ``ridge``."""
        return least_squares_log_power(x, y, self.k_fit, self.k_fin, ridge=self.ridge)


def select_least_squares(
    valid: PowerSpectrumBatch,
    k_fin: int,
    *,
    k_grid: Sequence[int],
    ridges: Sequence[float] = (0.0,),
    chunk: int = 64,
) -> ValidatedLeastSquares:
    """Choose ``(k_fit, ridge)`` with the lowest MSE (mean over ``k ≤ k_fin``) on the
    validation draw ``valid`` (never the test set). Ties go to the smaller ``k_fit``, then
    the smaller ridge.

    Raises:
        ValueError: for an empty ``k_grid`` or ``ridges``, a ``k_fit < k_fin``, or no
            candidate that can be fitted (all need a ridge).
    """
    if not k_grid or not ridges:
        raise ValueError(f"k_grid and ridges must not be empty; got {k_grid!r}, {ridges!r}")
    if min(k_grid) < k_fin:
        raise ValueError(f"every k_fit must be >= k_fin={k_fin}; got {sorted(k_grid)}")
    sums = _candidate_errors(valid, k_fin, sorted(k_grid), sorted(ridges), chunk)
    if not sums:
        raise ValueError("no candidate fits: least squares needs N >= 2 k_fit + 1")
    count = valid.x.shape[0]
    table = {f"K={k},ridge={r:g}": float(v.mean()) / count for (k, r), v in sums.items()}
    (k_fit, ridge), best = min(sums.items(), key=lambda kv: (float(kv[1].mean()), kv[0]))
    return ValidatedLeastSquares(
        k_fit=k_fit, ridge=ridge, k_fin=k_fin, valid_mse=float(best.mean()) / count, table=table
    )
