r"""Data of the power-spectrum experiment: random periodic functions and their samples.

The functions (eq. 4 of the blog post "Permutation-equivariant neural networks for power
spectrum estimation") are

.. math::

    f(x) = \sum_{k=1}^{k_{\max}} \sqrt{p_k}\, \cos(k x + \phi_k), \qquad
    \phi_k \sim U[0, 2\pi), \quad p_k \sim \mathrm{Exp}(\text{mean } 1/k^2),

sampled at ``N`` points :math:`x_n \sim U[0, 2\pi)`, optionally with observation noise,
:math:`y_n = f(x_n) + \sigma\varepsilon_n`. The target is :math:`\log p_k` for
:math:`k = 1..K_{\text{fin}}`. Every draw is a pure function of a seed: the training
stream of ``(seed, step, rank)``, the test set of ``(test_seed, set_size, k_max)``.

The study's four regimes (:data:`REGIMES`) are named settings ``(k_max, K_fin, N, σ)``
with their own training stream and fixed validation and test draws
(:func:`make_regime_sampler`, :func:`regime_sets`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

import torch
from torch import Tensor
from torch.nn import functional as F

from ..._validation import check_dim, resolve_option
from .._common import generator_for

__all__ = [
    "ENCODINGS",
    "REGIMES",
    "Design",
    "Encoding",
    "PowerSpectrumBatch",
    "Regime",
    "RegimeName",
    "encode",
    "evaluate_functions",
    "fixed_spectra",
    "make_regime_sampler",
    "make_stream_sampler",
    "regime_sets",
    "sample_at",
    "sample_functions",
    "sample_power_spectrum",
]


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


REGIME_STREAMS = {"train": 3, "valid": 4, "test": 5}


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
    batch: int,
    k_max: int,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    k = torch.arange(1, k_max + 1, device=device, dtype=dtype)
    unit_exp = torch.empty(batch, k_max, device=device, dtype=dtype)
    log_power = unit_exp.exponential_(generator=generator).log() - 2.0 * k.log()  # (B, K)
    phase = torch.rand(batch, k_max, device=device, generator=generator, dtype=dtype)
    return log_power, phase * (2 * math.pi)


def _add_noise(y: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    """``y + noise · ε`` with fresh standard normal ``ε`` (no draw when ``noise == 0``, so
    noiseless streams are those of earlier versions)."""
    if noise == 0:
        return y
    eps = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    return y + noise * eps


def evaluate_functions(x: Tensor, log_power: Tensor, phase: Tensor, chunk: int = 64) -> Tensor:
    """:math:`f(x)` of eq. 4 at positions ``x (B, N)`` for spectra ``(B, K)``: ``(B, N)``.

    Frequencies are split into blocks of ``chunk``: frequency :math:`s + r` of the block
    starting at :math:`s` uses :math:`e^{i(s + r)x} = e^{isx}\\,e^{irx}`, so only the
    ``chunk`` base waves :math:`\\cos rx, \\sin rx` and one rotation per block are
    evaluated (sines and cosines dominate the cost: ~5× faster at ``K = 512``; float32
    error ~1e-5 there, as the direct sum's). With one block (``K ≤ chunk``) it is the
    direct sum, bit for bit.
    """
    amplitude = (0.5 * log_power).exp()  # (B, K) = sqrt(p_k)
    a = amplitude * phase.cos()  # (B, K)
    b = amplitude * phase.sin()  # (B, K)
    batch, k_max = log_power.shape
    width = min(chunk, k_max)
    blocks = -(-k_max // width)
    r = torch.arange(1, width + 1, device=x.device, dtype=x.dtype)
    angle = x.unsqueeze(-1) * r  # (B, N, width)
    cos, sin = angle.cos(), angle.sin()
    if blocks == 1:
        return (cos @ a.unsqueeze(-1) - sin @ b.unsqueeze(-1)).squeeze(-1)

    def by_block(coefficients: Tensor) -> Tensor:  # (B, K) -> (B, width, blocks)
        padded = F.pad(coefficients, (0, blocks * width - k_max))
        return padded.view(batch, blocks, width).transpose(1, 2)

    a, b = by_block(a), by_block(b)
    real = cos @ a - sin @ b  # (B, N, blocks): sum over r of Re(c_{s+r} e^{irx})
    imag = sin @ a + cos @ b  # (B, N, blocks)
    starts = torch.arange(blocks, device=x.device, dtype=x.dtype) * width
    shift = x.unsqueeze(-1) * starts  # (B, N, blocks)
    return (shift.cos() * real - shift.sin() * imag).sum(-1)


def sample_power_spectrum(
    batch: int,
    set_size: int,
    k_max: int,
    *,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    noise: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> PowerSpectrumBatch:
    """Draw ``batch`` random functions (eq. 4) and ``set_size`` iid samples of each, with
    observation noise of standard deviation ``noise`` added to ``f(x)``.

    Vectorised and on ``device`` (the generator's device by default), in ``dtype``. The
    result is a pure function of the generator's state.
    """
    device = torch.device(device) if device is not None else generator.device
    log_power, phase = _draw_spectrum(batch, k_max, generator, device, dtype)
    x = torch.rand(batch, set_size, device=device, generator=generator, dtype=dtype)
    x = x * (2 * math.pi)
    y = _add_noise(evaluate_functions(x, log_power, phase), noise, generator)
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


def make_stream_sampler(
    *,
    set_size: int,
    batch_size: int,
    k_max: int,
    k_fin: int,
    encoding: str,
    seed: int,
    noise: float = 0.0,
) -> Callable[[int, int, torch.device], tuple[Tensor, Tensor]]:
    """A training stream ``(step, rank, device) -> (features, target)``, a pure function."""

    def sample(step: int, rank: int, device: torch.device) -> tuple[Tensor, Tensor]:
        generator = generator_for(seed, TRAIN_STREAM, rank, step, device=device)
        batch = sample_power_spectrum(batch_size, set_size, k_max, generator=generator, noise=noise)
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


def sample_at(
    log_power: Tensor, phase: Tensor, set_size: int, *, seed: int, noise: float = 0.0
) -> PowerSpectrumBatch:
    """Sample the given functions at ``set_size`` fresh iid positions (seeded by
    ``(seed, set_size)``) on the CPU, with observation noise ``noise``.

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
    y = _add_noise(evaluate_functions(x, log_power, phase), noise, generator)
    return PowerSpectrumBatch(x=x, y=y, log_power=log_power, phase=phase)


class Design(str, Enum):
    """The network designs compared on the regimes (``model.build_design``)."""

    GENERIC = "generic"
    STRUCTURED = "structured"


class RegimeName(str, Enum):
    """The study's named regimes (:data:`REGIMES`)."""

    BLOG = "blog"
    NOISY = "noisy"
    UNDERDETERMINED = "underdetermined"
    ALIASING = "aliasing"


@dataclass(frozen=True)
class Regime:
    r"""One setting of the task: functions with ``k_max`` frequencies, ``k_fin`` of them
    estimated, from ``set_size`` samples with observation noise ``noise`` (σ).

    Raises:
        ValueError: for ``k_fin`` outside ``1..k_max``, ``set_size < 1`` or ``noise < 0``.
    """

    name: str
    k_max: int
    k_fin: int
    set_size: int
    noise: float

    def __post_init__(self) -> None:
        if not 1 <= self.k_fin <= self.k_max:
            raise ValueError(
                f"need 1 <= k_fin <= k_max; got k_fin={self.k_fin}, k_max={self.k_max}"
            )
        check_dim(self.set_size, name="set_size")
        if not self.noise >= 0:
            raise ValueError(f"noise must be a number >= 0; got {self.noise!r}")

    @property
    def key(self) -> tuple[int, int, int, int]:
        """Integers that identify the regime's draws (σ in units of 1e-6)."""
        return (self.k_max, self.k_fin, self.set_size, round(self.noise * 1e6))

    def with_set_size(self, set_size: int) -> Regime:
        """The same regime sampled at ``set_size`` points (figure 6)."""
        return replace(self, set_size=set_size)


#: The four regimes of the study: the blog post's task; a noisy one; an underdetermined
#: one (fewer samples than coefficients); and the blog post's figure-5 test (aliasing of
#: frequencies up to 512 into the estimated ones).
REGIMES: dict[str, Regime] = {
    "blog": Regime("blog", k_max=4, k_fin=4, set_size=128, noise=0.0),
    "noisy": Regime("noisy", k_max=4, k_fin=4, set_size=32, noise=0.3),
    "underdetermined": Regime("underdetermined", k_max=64, k_fin=8, set_size=32, noise=0.0),
    "aliasing": Regime("aliasing", k_max=512, k_fin=8, set_size=512, noise=0.0),
}


def regime_sets(
    regime: Regime, count: int, *, stream: str, seed: int, chunk: int = 128
) -> PowerSpectrumBatch:
    """The fixed ``"valid"`` or ``"test"`` draw of ``regime``: ``count`` sets in float64.

    Chunk ``i`` comes from its own generator ``(seed, stream, regime, i)``, so the first
    sets do not depend on ``count``, and the two streams never share random numbers (the
    validation draw, which chooses the baselines' settings, is independent of the test).
    """
    if stream not in ("valid", "test"):
        raise ValueError(f"stream must be 'valid' or 'test'; got {stream!r}")
    parts = []
    for index, start in enumerate(range(0, count, chunk)):
        generator = generator_for(seed, REGIME_STREAMS[stream], *regime.key, index)
        size = min(chunk, count - start)
        parts.append(
            sample_power_spectrum(
                size,
                regime.set_size,
                regime.k_max,
                generator=generator,
                noise=regime.noise,
                dtype=torch.float64,
            )
        )
    return PowerSpectrumBatch(
        *(torch.cat([getattr(p, f) for p in parts]) for f in ("x", "y", "log_power", "phase"))
    )


def make_regime_sampler(
    regime: Regime, *, batch_size: int, seed: int
) -> Callable[[int, int, torch.device], tuple[Tensor, Tensor]]:
    """The training stream of ``regime``: ``(step, rank, device) -> (features, target)``
    with ``raw`` features ``(B, N, 2)`` = ``(x, y)`` and target ``(B, k_fin)``, fresh
    functions every step (a pure function of ``(seed, step, rank)``)."""

    def sample(step: int, rank: int, device: torch.device) -> tuple[Tensor, Tensor]:
        generator = generator_for(
            seed, REGIME_STREAMS["train"], *regime.key, rank, step, device=device
        )
        batch = sample_power_spectrum(
            batch_size, regime.set_size, regime.k_max, generator=generator, noise=regime.noise
        )
        return encode(batch.x, batch.y, Encoding.RAW), batch.target(regime.k_fin)

    return sample
