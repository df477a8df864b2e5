r"""The two network designs of the power-spectrum regimes, built from the library's parts.

- :class:`GenericSpectrumNet`: the mean-pooled Fourier moments of the set (Fourier
  features :math:`\psi(x_n)`, their products with :math:`y_n` and with each other,
  :math:`y_n`, :math:`y_n^2`) → an MLP ρ with a power read-out;
- :class:`StructuredSpectrumNet`: φ emits second-order statistics, sum-pooled into
  :math:`G = \sum_n \psi_n\psi_n^\top` and :math:`r = \sum_n \psi_n y_n`
  (:func:`~deepsets.functional.pooled_outer`); ρ solves a learned-regularised linear system
  (a Gaussian posterior with a learned prior precision per frequency and a learned noise),
  and a small MLP shared by the frequencies maps the rotation-invariant summaries of each
  pair :math:`(A_k, B_k)` to :math:`\log p_k`.

Both take ``raw`` features ``(B, N, 2)`` = :math:`(x_n, y_n)` with an optional mask, as
every network of the study, so the library's training engine trains them unchanged.

Reference: Zaheer et al., *Deep Sets*, NeurIPS 2017, https://arxiv.org/abs/1703.06114
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from ... import FourierFeatures
from ..._validation import check_dim
from ...functional import masked_pool, pooled_outer
from ...layers import mlp
from .baselines import EULER_GAMMA

__all__ = ["GenericSpectrumNet", "StructuredSpectrumNet", "prior_mean"]


def prior_mean(k_fin: int) -> Tensor:
    r"""The prior's :math:`E\log p_k = -2\log k - \gamma`: ``(k_fin,)`` float32."""
    return -2.0 * torch.arange(1, k_fin + 1, dtype=torch.float32).log() - EULER_GAMMA


def _split(features: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, N, 2)`` raw features → positions ``x`` and values ``y``, each ``(B, N)``."""
    if features.dim() != 3 or features.shape[-1] != 2:
        raise ValueError(
            f"features must be raw (x, y) pairs of shape (B, N, 2); got {tuple(features.shape)}"
        )
    return features[..., 0], features[..., 1]


class GenericSpectrumNet(nn.Module):
    r"""Mean-pooled first- and second-order Fourier moments, a fixed standardisation and an
    MLP ρ with a power read-out — no solve: ρ learns the map to the log power itself.

    .. math::

        z = \frac1N \sum_n \big[\psi_n \oplus y_n\psi_n \oplus (y_n, y_n^2) \oplus
        \mathrm{triu}(\psi_n\psi_n^\top)\big], \qquad
        (u_k, v_k, c_k) = \rho\big((z - \mu) / s\big)_k, \qquad
        \widehat{\log p_k} = \log\big(u_k^2 + v_k^2 + e^{c_k + \bar\ell_k}\big)

    with :math:`\psi` the :class:`~deepsets.FourierFeatures` of :math:`J` frequencies,
    :math:`\mu, s` a per-feature standardisation measured once, on the first training batch
    (buffers, saved with the weights), ρ a plain MLP with SiLU activations and
    :math:`\bar\ell_k` the prior mean of :math:`\log p_k`. It is a Deep Set
    :math:`\rho(\frac1N\sum_n\varphi(x_n, y_n))` with a fixed φ (Zaheer et al., Theorem 2).
    Least squares :math:`G^{-1}r` is a smooth function of the pooled
    :math:`G = \overline{\psi\psi^\top}` and :math:`r = \overline{\psi y}`, so ρ can
    approximate it and the plug-in power :math:`\hat A_k^2 + \hat B_k^2`; the floor
    :math:`e^{c_k + \bar\ell_k}` keeps the log
    finite where the data cannot resolve a small power.

    Shapes:
        - ``features``: ``(B, N, 2)`` = :math:`(x_n, y_n)`; ``mask``: ``(B, N)`` optional
        - pooled ``z``: ``(B, 4J + 2 + J(2J + 1))``
        - output: ``(B, k_fin)``

    Args:
        k_fin: number of estimated frequencies.
        num_frequencies: :math:`J` (the Gram part has :math:`J(2J + 1)` features).
        rho_hidden_dims: hidden widths of ρ.
    """

    offset: Tensor
    rows: Tensor
    cols: Tensor
    feature_mean: Tensor
    feature_scale: Tensor
    calibrated: Tensor

    def __init__(
        self, k_fin: int, *, num_frequencies: int, rho_hidden_dims: Sequence[int] = (256, 256)
    ) -> None:
        super().__init__()
        self.k_fin = check_dim(k_fin, name="k_fin")
        self.encoder = FourierFeatures(num_frequencies)
        width = self.encoder.output_dim()
        rows, cols = torch.triu_indices(width, width)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        pooled_dim = self.encoder.output_dim(1) + 2 + rows.numel()
        self.register_buffer("feature_mean", torch.zeros(pooled_dim))
        self.register_buffer("feature_scale", torch.ones(pooled_dim))
        self.register_buffer("calibrated", torch.tensor(False))
        # SiLU, not ReLU: the map to the log power is smooth and a piecewise-linear ρ
        # fits it less closely (validation MSE in the blog regime 0.017 against 0.034)
        self.rho = mlp(pooled_dim, list(rho_hidden_dims), 3 * self.k_fin, activation=nn.SiLU)
        self.register_buffer("offset", prior_mean(self.k_fin), persistent=False)

    def pooled(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """The mean-pooled moments ``z`` of the sets: ``(B, 4J + 2 + J(2J + 1))``."""
        x, y = _split(features.to(self.offset.dtype))
        values = y.unsqueeze(-1)  # (B, N, 1)
        first = torch.cat([self.encoder(x, values), values, values.square()], -1)
        psi = self.encoder(x)  # (B, N, 2J)
        count = (
            torch.full_like(y[:, :1], y.shape[1])
            if mask is None
            else mask.to(y.dtype).sum(-1, keepdim=True).clamp_min(1)
        )  # (B, 1)
        gram = pooled_outer(psi, weights=mask)[:, self.rows, self.cols] / count
        return torch.cat([masked_pool(first, "mean", mask), gram], -1)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        z = self.pooled(features, mask)  # (B, F)
        if self.training and not bool(self.calibrated):
            # the scale of the moments differs by orders of magnitude between regimes:
            # measure it once, on the first training batch, and keep it fixed
            with torch.no_grad():
                self.feature_mean.copy_(z.mean(0))
                self.feature_scale.copy_(z.std(0).clamp_min(1e-6))
                self.calibrated.fill_(True)
        out = self.rho((z - self.feature_mean) / self.feature_scale)  # (B, 3 k_fin)
        u, v, c = out.unflatten(-1, (3, self.k_fin)).unbind(-2)  # (B, k_fin) each
        return (u.square() + v.square() + (c + self.offset).exp()).log()

    def extra_repr(self) -> str:
        return f"k_fin={self.k_fin}, num_frequencies={self.encoder.num_frequencies}"


class StructuredSpectrumNet(nn.Module):
    r"""Sum-pooled second-order statistics, a learned-regularised solve and a head shared
    by the frequencies.

    .. math::

        G = \sum_n \psi_n\psi_n^\top, \quad r = \sum_n \psi_n y_n, \quad
        P = G + s^2\Lambda, \quad m = P^{-1} r, \quad C = s^2 P^{-1},

        \Lambda = \mathrm{diag}\big(e^{\,a + b\log j + c_j}\big), \qquad
        \widehat{\log p_k} = \ell_k + h\big(\mathrm{clip}(\ell_k - \log \mathrm{tr}\,C_k)/5,
        1 - 4\det C_k/(\mathrm{tr}\,C_k)^2, e_k\big),

    with :math:`\ell_k = \log|m_k|^2` for the pair :math:`m_k = (m_{A_k}, m_{B_k})`,
    :math:`C_k` its 2×2 block, :math:`e_k` a one-hot of :math:`k` and :math:`h` a small
    MLP (its last layer starts at zero: the plug-in estimate). With :math:`\Lambda` the
    prior precision :math:`2j^2` and :math:`s` the noise, :math:`(m, C)` is the exact
    Gaussian posterior of the coefficients truncated to :math:`J` frequencies, and for an
    isotropic :math:`C_k` the best head is :math:`E_1(|m_k|^2/\mathrm{tr}\,C_k)`; ridge
    regression and least squares (:math:`s \to 0`) are special cases. The statistics and
    the solve run in float64.

    The structural parameters :math:`(a, b, c_j, \log s)` are stored divided by
    ``structure_scale``, so Adam moves them ``structure_scale`` times faster than the
    head's weights (one learning rate for the whole model).

    Shapes:
        - ``features``: ``(B, N, 2)`` = :math:`(x_n, y_n)`; ``mask``: ``(B, N)`` optional
        - output: ``(B, k_fin)``

    Args:
        k_fin: number of estimated frequencies (≤ ``num_frequencies``).
        num_frequencies: :math:`J`.
        head_hidden_dims: hidden widths of :math:`h`.
        init_noise: initial :math:`s`.
        structure_scale: the learning-rate factor of the structural parameters.
    """

    log_j: Tensor
    one_hot: Tensor

    def __init__(
        self,
        k_fin: int,
        *,
        num_frequencies: int,
        head_hidden_dims: Sequence[int] = (32, 32),
        init_noise: float = 0.1,
        structure_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.k_fin = check_dim(k_fin, name="k_fin")
        if not self.k_fin <= num_frequencies:
            raise ValueError(
                f"k_fin must be <= num_frequencies={num_frequencies}; got k_fin={k_fin}"
            )
        if not init_noise > 0 or not structure_scale > 0:
            raise ValueError(
                f"init_noise and structure_scale must be > 0; got {init_noise}, {structure_scale}"
            )
        self.encoder = FourierFeatures(num_frequencies)
        self.structure_scale = float(structure_scale)
        self.log_precision = nn.Parameter(torch.zeros(2))  # (a, b) / scale
        self.log_precision_offsets = nn.Parameter(torch.zeros(num_frequencies))  # c_j / scale
        self.log_noise = nn.Parameter(torch.tensor(math.log(init_noise) / structure_scale))
        self.head = mlp(2 + self.k_fin, list(head_hidden_dims), 1)
        last = cast(nn.Linear, self.head[-1])
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.register_buffer("log_j", torch.arange(1, num_frequencies + 1).log(), persistent=False)
        self.register_buffer("one_hot", torch.eye(self.k_fin), persistent=False)

    def posterior(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The learned posterior mean ``(B, k_fin, 2)`` and 2×2 blocks ``(B, k_fin, 2, 2)``
        (float64) of the sets ``x, y (B, N)``."""
        j, k, scale = self.encoder.num_frequencies, self.k_fin, self.structure_scale
        psi = self.encoder(x.double())  # (B, N, 2J): cos block, then sin block
        gram = pooled_outer(psi, weights=mask)  # (B, 2J, 2J)
        moment = pooled_outer(psi, y.double().unsqueeze(-1), weights=mask)  # (B, 2J, 1)
        noise_var = (2 * scale * self.log_noise.double()).exp()
        a, b = (scale * self.log_precision.double()).unbind()
        log_prec = a + b * self.log_j.double() + scale * self.log_precision_offsets.double()
        ridge = noise_var * log_prec.exp().repeat(2)  # (2J,)
        chol = torch.linalg.cholesky(gram + torch.diag(ridge))  # (B, 2J, 2J)
        keep = torch.cat([torch.arange(k), torch.arange(j, j + k)]).to(x.device)
        unit = torch.eye(2 * j, dtype=psi.dtype, device=x.device)[:, keep]  # (2J, 2k)
        rhs = torch.cat([moment, unit.expand(x.shape[0], -1, -1)], -1)  # (B, 2J, 1 + 2k)
        solved = torch.cholesky_solve(rhs, chol)  # (B, 2J, 1 + 2k)
        coef = solved[:, keep, 0]  # (B, 2k)
        inverse = solved[:, keep, 1:]  # (B, 2k, 2k)
        mean = torch.stack([coef[:, :k], coef[:, k:]], -1)  # (B, k, 2)
        idx = torch.arange(k, device=x.device)
        aa, ab, bb = inverse[:, idx, idx], inverse[:, idx, idx + k], inverse[:, idx + k, idx + k]
        cov = noise_var * torch.stack([torch.stack([aa, ab], -1), torch.stack([ab, bb], -1)], -2)
        return mean, cov

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        x, y = _split(features)
        mean, cov = self.posterior(x, y, mask)
        tiny = 1e-300
        log_m2 = mean.square().sum(-1).clamp_min(tiny).log()  # (B, k)
        trace = (cov[..., 0, 0] + cov[..., 1, 1]).clamp_min(tiny)  # (B, k)
        det = cov[..., 0, 0] * cov[..., 1, 1] - cov[..., 0, 1].square()
        aniso = (1 - 4 * det / trace.square()).clamp(0, 1)
        ratio = (log_m2 - trace.log()).clamp(-15, 15)
        summaries = torch.stack([ratio / 5, aniso], -1).to(self.one_hot.dtype)  # (B, k, 2)
        one_hot = self.one_hot.expand(x.shape[0], -1, -1)  # (B, k, k)
        correction = self.head(torch.cat([summaries, one_hot], -1)).squeeze(-1)  # (B, k)
        return log_m2.to(correction.dtype) + correction

    def extra_repr(self) -> str:
        return (
            f"k_fin={self.k_fin}, num_frequencies={self.encoder.num_frequencies}, "
            f"structure_scale={self.structure_scale}"
        )
