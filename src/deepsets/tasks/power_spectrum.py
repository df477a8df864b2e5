r"""The power-spectrum study: estimate the power spectrum of a random periodic function
from ``N`` unordered samples with a permutation-invariant network.

The functions (the study's eq. 4) are

.. math::

    f(x) = \sum_{k=1}^{k_{\max}} \sqrt{p_k}\, \cos(k x + \phi_k), \qquad
    \phi_k \sim U[0, 2\pi), \quad p_k \sim \mathrm{Exp}(\text{mean } 1/k^2),

sampled at ``N`` points :math:`x_n \sim U[0, 2\pi)`. The target is :math:`\log p_k` for
:math:`k = 1..K_{\text{fin}}`. This module holds the data stream, the model, the two
baselines (the prior and a least-squares Fourier fit) and the evaluation; figures and the
report live in :mod:`deepsets.study.figures` and :mod:`deepsets.study.report`, the
experiment driver in :mod:`deepsets.study.power_spectrum`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch
from torch import Tensor, nn

from .. import PermutationEquivariantLayer
from .._validation import check_dim, resolve_option
from ..functional import masked_pool
from ._seeding import generator_for

__all__ = [
    "ENCODINGS",
    "EULER_GAMMA",
    "Encoding",
    "PowerSpectrumBatch",
    "PowerSpectrumNet",
    "dense_parameter_count",
    "encode",
    "evaluate_functions",
    "evaluate_mse",
    "fixed_spectra",
    "least_squares_log_power",
    "make_stream_sampler",
    "parameter_count",
    "prior_log_power",
    "sample_at",
    "sample_functions",
    "sample_power_spectrum",
    "squared_errors",
]

#: The Euler–Mascheroni constant γ: :math:`E[\log p] = \log(\text{mean}) - \gamma` for an
#: exponential variable.
EULER_GAMMA = 0.5772156649015329


class Encoding(str, Enum):
    """How a sample ``(x, f(x))`` is given to the network."""

    RAW = "raw"
    CIRCLE = "circle"


#: Input encodings: feature width per element.
ENCODINGS: dict[str, int] = {Encoding.RAW.value: 2, Encoding.CIRCLE.value: 3}

# Stream ids, so the training stream, the test set and figure data never share numbers.
TRAIN_STREAM = 0
TEST_STREAM = 1
SWEEP_STREAM = 2


@dataclass
class PowerSpectrumBatch:
    """A batch of sampled functions.

    Shapes:
        - ``x``: ``(B, N)`` sample positions in ``[0, 2π)``
        - ``y``: ``(B, N)`` function values ``f(x)``
        - ``log_power``: ``(B, k_max)`` the drawn :math:`\\log p_k`, ``k = 1..k_max``
        - ``phase``: ``(B, k_max)`` the drawn :math:`\\phi_k`
    """

    x: Tensor
    y: Tensor
    log_power: Tensor
    phase: Tensor

    def target(self, k_fin: int) -> Tensor:
        """The regression target :math:`\\log p_k`, ``k = 1..k_fin``: ``(B, k_fin)``."""
        return self.log_power[:, :k_fin]


def _draw_spectrum(
    batch: int, k_max: int, generator: torch.Generator, device: torch.device
) -> tuple[Tensor, Tensor]:
    k = torch.arange(1, k_max + 1, device=device, dtype=torch.float32)
    unit_exp = torch.empty(batch, k_max, device=device).exponential_(generator=generator)
    log_power = unit_exp.log() - 2.0 * k.log()  # (B, K): log of Exp(mean 1/k²)
    phase = torch.rand(batch, k_max, device=device, generator=generator) * (2 * math.pi)
    return log_power, phase


def evaluate_functions(x: Tensor, log_power: Tensor, phase: Tensor, chunk: int = 64) -> Tensor:
    """:math:`f(x)` of eq. 4 at positions ``x (B, N)`` for spectra ``(B, K)``: ``(B, N)``.

    Uses :math:`\\cos(kx+\\phi) = \\cos kx \\cos\\phi - \\sin kx \\sin\\phi`, one batched
    matrix product per chunk of frequencies (memory ``O(B·N·chunk)``).
    """
    amplitude = (0.5 * log_power).exp()  # (B, K) = sqrt(p_k)
    a = amplitude * phase.cos()  # (B, K)
    b = amplitude * phase.sin()  # (B, K)
    y = torch.zeros_like(x)
    k_max = log_power.shape[1]
    for start in range(0, k_max, chunk):
        stop = min(start + chunk, k_max)
        k = torch.arange(start + 1, stop + 1, device=x.device, dtype=x.dtype)
        angle = x.unsqueeze(-1) * k  # (B, N, C)
        y += (angle.cos() @ a[:, start:stop, None]).squeeze(-1)
        y -= (angle.sin() @ b[:, start:stop, None]).squeeze(-1)
    return y


def sample_power_spectrum(
    batch: int,
    set_size: int,
    k_max: int,
    *,
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> PowerSpectrumBatch:
    """Draw ``batch`` random functions (eq. 4) and ``set_size`` iid samples of each.

    Vectorised and on ``device`` (the generator's device by default). The result is a
    pure function of the generator's state.
    """
    device = torch.device(device) if device is not None else generator.device
    log_power, phase = _draw_spectrum(batch, k_max, generator, device)
    x = torch.rand(batch, set_size, device=device, generator=generator) * (2 * math.pi)
    y = evaluate_functions(x, log_power, phase)
    return PowerSpectrumBatch(x=x, y=y, log_power=log_power, phase=phase)


def sample_functions(
    count: int, k_max: int, grid: int = 512, *, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``count`` functions of eq. 4 on a regular grid, for plots: ``(grid,)``, ``(count, grid)``."""
    generator = generator_for(seed, 99, k_max)
    log_power, phase = _draw_spectrum(count, k_max, generator, torch.device("cpu"))
    x = torch.linspace(0, 2 * math.pi, grid)
    return x, evaluate_functions(x.expand(count, grid), log_power, phase)


def encode(x: Tensor, y: Tensor, encoding: str) -> Tensor:
    """Per-element features ``(B, N, d)``: ``raw`` = ``(x, y)``, ``circle`` = ``(cos x, sin x, y)``.

    ``circle`` puts the positions on the unit circle, so a rotation ``x → x + c`` acts
    linearly on the features (the study's appendix); ``raw`` is the study's own input.
    """
    if resolve_option(encoding, Encoding, name="encoding") is Encoding.RAW:
        return torch.stack([x, y], dim=-1)
    return torch.stack([x.cos(), x.sin(), y], dim=-1)


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
        self.layers = nn.ModuleList(
            PermutationEquivariantLayer(w_in, w_out, pool_type="mean")
            for w_in, w_out in itertools.pairwise(widths)
        )
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


def evaluate_mse(
    predict: Callable[[PowerSpectrumBatch], Tensor],
    *,
    k_fin: int,
    k_max: int,
    set_size: int,
    num_sets: int,
    seed: int,
    chunk: int = 128,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Per-frequency MSE of ``predict`` on the fixed test set ``(seed, set_size, k_max)``.

    The test set is drawn chunk by chunk from its own seeded stream, so it is the same
    for every model and never overlaps the training stream. Returns ``(k_fin,)``.
    """
    total = torch.zeros(k_fin, dtype=torch.float64)
    for index, start in enumerate(range(0, num_sets, chunk)):
        size = min(chunk, num_sets - start)
        generator = generator_for(seed, TEST_STREAM, k_max, set_size, index, device=device)
        batch = sample_power_spectrum(size, set_size, k_max, generator=generator)
        with torch.no_grad():
            error = predict(batch).double() - batch.target(k_fin).double()
        total += error.square().sum(0).cpu()
    return (total / num_sets).float()


def make_stream_sampler(
    *, set_size: int, batch_size: int, k_max: int, k_fin: int, encoding: str, seed: int
) -> Callable[[int, int, torch.device], tuple[Tensor, Tensor]]:
    """A training stream ``(step, rank, device) -> (features, target)``, a pure function."""

    def sample(step: int, rank: int, device: torch.device) -> tuple[Tensor, Tensor]:
        generator = generator_for(seed, TRAIN_STREAM, rank, step, device=device)
        batch = sample_power_spectrum(batch_size, set_size, k_max, generator=generator)
        return encode(batch.x, batch.y, encoding), batch.target(k_fin)

    return sample


def fixed_spectra(num_sets: int, k_max: int, *, seed: int) -> tuple[Tensor, Tensor]:
    """A fixed draw of ``num_sets`` spectra (eq. 4) on the CPU: ``log_power``, ``phase``.

    The draw depends on ``(seed, k_max, num_sets)`` only, so every model and every set
    size of a sweep sees the same functions (common random numbers make the comparison
    between set sizes far less noisy than independent test sets would).

    Shapes:
        returns ``(num_sets, k_max)`` and ``(num_sets, k_max)``
    """
    generator = generator_for(seed, SWEEP_STREAM, k_max, num_sets)
    return _draw_spectrum(num_sets, k_max, generator, torch.device("cpu"))


def sample_at(log_power: Tensor, phase: Tensor, set_size: int, *, seed: int) -> PowerSpectrumBatch:
    """Sample the given functions at ``set_size`` fresh iid positions (seeded by
    ``(seed, set_size)``) on the CPU.

    Shapes:
        ``log_power``, ``phase``: ``(B, K)`` → a batch with ``x``, ``y`` of ``(B, set_size)``
    """
    if log_power.shape != phase.shape or log_power.dim() != 2:
        raise ValueError(
            "log_power and phase must be equal (B, K) tensors; got "
            f"{tuple(log_power.shape)} and {tuple(phase.shape)}"
        )
    set_size = check_dim(set_size, name="set_size")
    generator = generator_for(seed, SWEEP_STREAM, set_size)
    x = torch.rand(log_power.shape[0], set_size, generator=generator) * (2 * math.pi)
    y = evaluate_functions(x, log_power, phase)
    return PowerSpectrumBatch(x=x, y=y, log_power=log_power, phase=phase)


def squared_errors(
    predict: Callable[[Tensor, Tensor], Tensor],
    batch: PowerSpectrumBatch,
    k_fin: int,
    *,
    max_elements: int = 1 << 18,
) -> Tensor:
    r"""Per-set, per-frequency squared errors :math:`(\hat{\ell}_k - \log p_k)^2` of
    ``predict(x, y) -> (b, k_fin)``, evaluated in chunks of at most ``max_elements``
    samples (so a sweep to large ``N`` stays within memory).

    Shapes:
        ``batch.x``: ``(B, N)`` → ``(B, k_fin)`` float64
    """
    count, set_size = batch.x.shape
    chunk = max(1, max_elements // max(1, set_size))
    target = batch.target(k_fin).double()
    parts = []
    with torch.no_grad():
        for start in range(0, count, chunk):
            part = slice(start, start + chunk)
            prediction = predict(batch.x[part], batch.y[part]).double().cpu()
            parts.append((prediction - target[part]).square())
    return torch.cat(parts)
