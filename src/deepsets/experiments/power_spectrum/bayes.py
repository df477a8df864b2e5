r"""The Bayes-optimal estimate of the log power spectrum: the floor of the study.

The functions of the blog post "Permutation-equivariant neural networks for power spectrum
estimation", :math:`f = \sum_k \sqrt{p_k}\cos(kx + \phi_k)` with
:math:`p_k \sim \mathrm{Exp}(\text{mean } 1/k^2)` and a uniform phase, are
:math:`f = \sum_k A_k\cos kx + B_k\sin kx` with independent
:math:`A_k, B_k \sim \mathcal N(0, 1/(2k^2))`: the coefficients
:math:`\theta = (A_1..A_{k_{\max}}, B_1..B_{k_{\max}})` are a priori independent
:math:`\mathcal N(0, D)`, :math:`D = \mathrm{diag}(1/(2k^2))`, and the samples
are :math:`y = \Phi\theta + \sigma\varepsilon` with the Fourier design
:math:`\Phi_{n,\cdot} = [\cos kx_n, \sin kx_n]_{k}`. The posterior is Gaussian:

- coefficient space (used when :math:`2k_{\max} < N`):
  :math:`G = \Phi^\top\Phi + \sigma^2 D^{-1}`, mean :math:`G^{-1}\Phi^\top y`, covariance
  :math:`\sigma^2 G^{-1}` (zero for :math:`\sigma = 0`: the samples determine
  :math:`\theta`);
- function space (otherwise): :math:`K = \Phi D \Phi^\top + (\sigma^2 + \delta) I`
  (``N × N``; :math:`\delta` a tiny jitter), mean :math:`D_S\Phi_S^\top K^{-1} y` and
  covariance :math:`D_S - D_S\Phi_S^\top K^{-1}\Phi_S D_S` for the kept coefficients S.

Under squared error the best estimate of :math:`\log p_k = \log(A_k^2 + B_k^2)` is its
posterior mean, :math:`E\log|z|^2` for the 2-D marginal :math:`z \sim \mathcal N(\mu, C)`.
It is computed by Frullani's integral with the Gaussian Laplace transform,

.. math::

    E\log|z|^2 = \int_{-\infty}^{\infty} \Big(e^{-t} - E\,e^{-t|z|^2}\Big)\, du,
    \quad t = e^u, \qquad
    E\,e^{-t|z|^2} = \frac{\exp\!\big(-t\,\mu^\top (I + 2tC)^{-1}\mu\big)}
    {\sqrt{\det(I + 2tC)}},

with the trapezoidal rule in :math:`u`. The integrand is analytic in the strip
:math:`|\mathrm{Im}\,u| < \pi/2`, so the rule's error is :math:`O(e^{-\pi^2/h})`
(:math:`\approx 10^{-21}` at the default step :math:`h = 0.2`): the result is exact to
rounding, for any :math:`C` (also singular or zero). For an isotropic marginal it equals
:math:`\log|\mu|^2 + E_1(|\mu|^2/s^2)`, :math:`s^2 = E|z-\mu|^2`
(:func:`isotropic_expected_log_norm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .baselines import EULER_GAMMA

__all__ = [
    "BayesEstimator",
    "MarginalPosterior",
    "bayes_log_power",
    "exp1",
    "expected_log_norm",
    "fourier_design",
    "isotropic_expected_log_norm",
    "marginal_posterior",
    "prior_variance",
]


def prior_variance(k_max: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Prior variance :math:`1/(2k^2)` of :math:`A_k` (and :math:`B_k`): ``(k_max,)``."""
    k = torch.arange(1, k_max + 1, dtype=dtype)
    return 0.5 / k.square()


def fourier_design(x: Tensor, k_max: int) -> Tensor:
    """The design :math:`[\\cos kx, \\sin kx]_{k=1..k_{\\max}}`: ``(B, N) -> (B, N, 2k_max)``."""
    k = torch.arange(1, k_max + 1, dtype=x.dtype, device=x.device)
    angle = x.unsqueeze(-1) * k  # (B, N, K)
    return torch.cat([angle.cos(), angle.sin()], dim=-1)


@dataclass
class MarginalPosterior:
    """The 2-D posterior marginals of :math:`(A_k, B_k)`, ``k = 1..k_fin``.

    Shapes:
        - ``mean``: ``(B, k_fin, 2)``
        - ``cov``: ``(B, k_fin, 2, 2)``
    """

    mean: Tensor
    cov: Tensor


def _blocks(matrix: Tensor, k_fin: int, offset: int) -> Tensor:
    """The 2×2 blocks of ``(A_k, B_k)`` from a ``(B, P, P)`` matrix whose B-columns start
    at ``offset``: ``(B, k_fin, 2, 2)``."""
    k = torch.arange(k_fin, device=matrix.device)
    aa = matrix[:, k, k]
    ab = matrix[:, k, k + offset]
    bb = matrix[:, k + offset, k + offset]
    return torch.stack([torch.stack([aa, ab], -1), torch.stack([ab, bb], -1)], -2)


def _coefficient_space(
    x: Tensor, y: Tensor, k_max: int, k_fin: int, noise: float
) -> tuple[Tensor, Tensor]:
    phi = fourier_design(x, k_max)  # (B, N, 2K)
    precision = prior_variance(k_max, dtype=x.dtype).repeat(2).reciprocal()  # (2K,)
    gram = phi.transpose(1, 2) @ phi + torch.diag(noise**2 * precision)  # (B, 2K, 2K)
    chol, info = torch.linalg.cholesky_ex(gram)
    if bool((info > 0).any()):
        raise ValueError("the Gram matrix is singular: are sample positions repeated?")
    rhs = phi.transpose(1, 2) @ y.unsqueeze(-1)  # (B, 2K, 1)
    coef = torch.cholesky_solve(rhs, chol).squeeze(-1)  # (B, 2K)
    mean = torch.stack([coef[:, :k_fin], coef[:, k_max : k_max + k_fin]], -1)
    if noise == 0:
        cov = mean.new_zeros(*mean.shape, 2)
    else:
        cov = noise**2 * _blocks(torch.cholesky_inverse(chol), k_fin, k_max)
    return mean, cov


def _function_space(
    x: Tensor, y: Tensor, k_max: int, k_fin: int, noise: float, jitter: float
) -> tuple[Tensor, Tensor]:
    var = prior_variance(k_max, dtype=x.dtype).repeat(2)  # (2K,)
    phi = fourier_design(x, k_max)  # (B, N, 2K)
    kernel = (phi * var) @ phi.transpose(1, 2)  # (B, N, N)
    diag = noise**2 + jitter * float(var[:k_max].sum())
    kernel.diagonal(dim1=1, dim2=2).add_(diag)
    chol, info = torch.linalg.cholesky_ex(kernel)
    if bool((info > 0).any()):
        raise ValueError("the kernel matrix is not positive definite; increase jitter")
    keep = torch.cat([torch.arange(k_fin), torch.arange(k_max, k_max + k_fin)])
    cross = phi[..., keep] * var[keep]  # (B, N, 2S): Φ_S D_S
    solved = torch.linalg.solve_triangular(
        chol, torch.cat([y.unsqueeze(-1), cross], -1), upper=False
    )  # (B, N, 1 + 2S)
    w, v = solved[..., 0], solved[..., 1:]
    coef = (v * w.unsqueeze(-1)).sum(1)  # (B, 2S)
    mean = torch.stack([coef[:, :k_fin], coef[:, k_fin:]], -1)
    cov_full = torch.diag(var[keep]) - v.transpose(1, 2) @ v  # (B, 2S, 2S)
    return mean, _blocks(cov_full, k_fin, k_fin)


def marginal_posterior(
    x: Tensor,
    y: Tensor,
    *,
    k_max: int,
    k_fin: int,
    noise: float,
    jitter: float = 1e-10,
    chunk: int = 64,
) -> MarginalPosterior:
    """The exact Gaussian posterior marginals of :math:`(A_k, B_k)`, ``k ≤ k_fin``.

    Uses coefficient space when ``2·k_max < N`` and function space (an ``N × N``
    Cholesky, ``jitter`` times the prior variance of ``f(x)`` added to the diagonal)
    otherwise. Computed in float64, ``chunk`` sets at a time.

    Shapes:
        ``x``, ``y``: ``(B, N)`` → mean ``(B, k_fin, 2)``, cov ``(B, k_fin, 2, 2)``
    """
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(
            f"x and y must be equal (B, N) tensors; got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if not 1 <= k_fin <= k_max:
        raise ValueError(f"need 1 <= k_fin <= k_max; got k_fin={k_fin}, k_max={k_max}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    x, y = x.double(), y.double()
    means, covs = [], []
    for start in range(0, x.shape[0], chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        if 2 * k_max < x.shape[1]:
            mean, cov = _coefficient_space(xs, ys, k_max, k_fin, noise)
        else:
            mean, cov = _function_space(xs, ys, k_max, k_fin, noise, jitter)
        means.append(mean)
        covs.append(cov)
    return MarginalPosterior(torch.cat(means), torch.cat(covs))


def expected_log_norm(
    mean: Tensor, cov: Tensor, *, step: float = 0.2, span: float = 160.0, chunk: int = 1 << 16
) -> Tensor:
    r""":math:`E\log|z|^2` for :math:`z \sim \mathcal N(\mu, C)` in 2-D (Frullani's
    integral, trapezoidal rule in :math:`u = \log t`; see the module docstring).

    The grid starts where the integrand is below :math:`10^{-15}`,
    :math:`t = 10^{-15}/\max(1, E|z|^2)`, and runs ``span`` units of :math:`u` (the
    Laplace transform has decayed below :math:`10^{-20}` by then unless :math:`C`'s
    trace is below ~1e-30 with a zero mean).

    Shapes:
        ``mean``: ``(..., 2)``, ``cov``: ``(..., 2, 2)`` → ``(...)``
    """
    shape = mean.shape[:-1]
    mean, cov = mean.double().reshape(-1, 2), cov.double().reshape(-1, 2, 2)
    m2 = mean.square().sum(-1)
    trace = (cov[:, 0, 0] + cov[:, 1, 1]).clamp_min(0)
    det = (cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]).clamp(min=0)
    det = torch.minimum(det, trace.square() / 4)
    quad = torch.einsum("bi,bij,bj->b", mean, cov, mean).clamp_min(0)
    nodes = torch.arange(0.0, span + step / 2, step, dtype=torch.float64)  # (U,)
    out = []
    rows = max(1, chunk // nodes.numel())
    for s in range(0, m2.shape[0], rows):
        m2_, tr_, det_, q_ = (v[s : s + rows, None] for v in (m2, trace, det, quad))
        start = math.log(1e-15) - (m2_ + tr_).clamp_min(1.0).log()  # (b, 1)
        t = (start + nodes).exp()  # (b, U)
        growth = 2 * t * tr_ + 4 * t.square() * det_
        exponent = t * ((1 + 2 * t * tr_) * m2_ - 2 * t * q_) / (1 + growth)
        log_mgf = -0.5 * growth.log1p() - exponent
        integrand = torch.expm1(-t) - torch.expm1(log_mgf)
        out.append(step * (integrand.sum(-1) - 0.5 * (integrand[:, 0] + integrand[:, -1])))
    return torch.cat(out).reshape(shape)


def exp1(x: Tensor) -> Tensor:
    r"""The exponential integral :math:`E_1(x) = \int_x^\infty e^{-s}/s\, ds` for
    :math:`x > 0` (float64; relative error ~1e-15).

    Power series :math:`-\gamma - \ln x - \sum_{n\ge1} (-x)^n/(n\,n!)` for :math:`x \le 2`,
    the continued fraction (modified Lentz, 60 terms) for :math:`x > 2`.

    Shapes:
        any → same
    """
    x = x.double()
    small = x <= 2
    xs = torch.where(small, x, torch.ones_like(x))
    xl = torch.where(small, torch.full_like(x, 3.0), x)
    return torch.where(small, -EULER_GAMMA - xs.log() - _series(xs), _continued_fraction(xl))


def _series(x: Tensor) -> Tensor:
    """:math:`\\sum_{n\\ge1} (-x)^n/(n\\,n!)` for ``0 ≤ x ≤ 2`` (40 terms)."""
    term = torch.ones_like(x)
    total = torch.zeros_like(x)
    for n in range(1, 41):
        term = term * (-x) / n
        total = total + term / n
    return total


def _continued_fraction(x: Tensor) -> Tensor:
    tiny = 1e-300
    b = x + 1
    c = torch.full_like(x, 1 / tiny)
    d = 1 / b
    h = d
    for i in range(1, 61):
        an = -float(i * i)
        b = b + 2
        d = 1 / (an * d + b)
        c = b + an / c
        h = h * c * d
    return h * (-x).exp()


def isotropic_expected_log_norm(mean_sq: Tensor, spread: Tensor) -> Tensor:
    r""":math:`E\log|z|^2 = \log|\mu|^2 + E_1(|\mu|^2/s^2)` for an isotropic 2-D Gaussian
    with :math:`|\mu|^2` = ``mean_sq`` and :math:`s^2 = E|z-\mu|^2` = ``spread`` (> 0).

    For :math:`r = |\mu|^2/s^2 \le 2` it is evaluated as
    :math:`\log s^2 - \gamma - \sum_{n\ge1}(-r)^n/(n\,n!)`, finite at :math:`\mu = 0`.

    Shapes:
        ``mean_sq``, ``spread``: broadcastable → broadcast shape
    """
    mean_sq, spread = torch.broadcast_tensors(mean_sq.double(), spread.double())
    ratio = mean_sq / spread
    small = ratio <= 2
    near = spread.log() - EULER_GAMMA - _series(torch.where(small, ratio, torch.ones_like(ratio)))
    far_ratio = torch.where(small, torch.full_like(ratio, 3.0), ratio)
    far = mean_sq.clamp_min(1e-300).log() + _continued_fraction(far_ratio)
    return torch.where(small, near, far)


def bayes_log_power(
    x: Tensor, y: Tensor, *, k_max: int, k_fin: int, noise: float, jitter: float = 1e-10
) -> Tensor:
    r"""The Bayes-optimal (minimum mean squared error) estimate
    :math:`E[\log p_k \mid x, y]`, ``k = 1..k_fin``, under the study's prior.

    Shapes:
        ``x``, ``y``: ``(B, N)`` → ``(B, k_fin)`` float64
    """
    post = marginal_posterior(x, y, k_max=k_max, k_fin=k_fin, noise=noise, jitter=jitter)
    return expected_log_norm(post.mean, post.cov)


class BayesEstimator:
    """The Bayes-optimal estimate (:func:`bayes_log_power`) for functions with ``k_max``
    frequencies and noise ``noise``: ``predict(x, y) -> (B, k_fin)`` float64.

    It knows the prior and σ; no estimator has a lower expected squared error, so its test
    MSE is the floor of every table of the study.
    """

    def __init__(self, *, k_max: int, k_fin: int, noise: float) -> None:
        if not 1 <= k_fin <= k_max:
            raise ValueError(f"need 1 <= k_fin <= k_max; got k_fin={k_fin}, k_max={k_max}")
        if not noise >= 0:
            raise ValueError(f"noise must be a number >= 0; got {noise!r}")
        self.k_max, self.k_fin, self.noise = k_max, k_fin, float(noise)

    def predict(self, x: Tensor, y: Tensor) -> Tensor:
        r""":math:`E[\log p_k \mid x, y]` for the ``B`` sets ``x, y (B, N)``."""
        return bayes_log_power(x, y, k_max=self.k_max, k_fin=self.k_fin, noise=self.noise)

    def __repr__(self) -> str:
        return f"BayesEstimator(k_max={self.k_max}, k_fin={self.k_fin}, noise={self.noise})"
