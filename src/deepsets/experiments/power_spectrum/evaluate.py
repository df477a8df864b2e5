r"""Evaluation of the power-spectrum experiment: the MSE of any estimator on fixed test sets.

An estimator is any object with ``predict(x, y) -> (B, k_fin)`` (:class:`Estimator`): the
network (:class:`~deepsets.experiments.power_spectrum.model.NetworkEstimator`) and the
baselines (:mod:`~deepsets.experiments.power_spectrum.baselines`) alike. Every number is a
mean squared error of :math:`\log p_k` over the test functions (and over
``k = 1..K_fin`` where no ``k`` is named).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from .._common import generator_for
from .config import PowerSpectrumConfig
from .data import TEST_STREAM, PowerSpectrumBatch, fixed_spectra, sample_at, sample_power_spectrum

__all__ = [
    "Estimator",
    "error_summary",
    "evaluate_mse",
    "noise_tests",
    "regret_fraction",
    "size_sweep",
    "squared_errors",
    "sweep_sizes",
    "test_mse",
]


class Estimator(Protocol):
    r"""Anything that estimates :math:`\log p_k` from samples.

    Shapes:
        ``predict(x, y)``: ``x``, ``y`` ``(B, N)`` → ``(B, k_fin)``
    """

    def predict(self, x: Tensor, y: Tensor) -> Tensor:
        """Estimates for the ``B`` sets of samples ``(x, y)``."""
        ...


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
    noise: float = 0.0,
) -> Tensor:
    """Per-frequency MSE of ``predict`` on the fixed test set ``(seed, set_size, k_max)``
    (observation noise ``noise``).

    The test set is drawn chunk by chunk from its own seeded stream, so it is the same
    for every model and never overlaps the training stream. Returns ``(k_fin,)``.
    """
    total = torch.zeros(k_fin, dtype=torch.float64)
    for index, start in enumerate(range(0, num_sets, chunk)):
        size = min(chunk, num_sets - start)
        generator = generator_for(seed, TEST_STREAM, k_max, set_size, index, device=device)
        batch = sample_power_spectrum(size, set_size, k_max, generator=generator, noise=noise)
        with torch.no_grad():
            error = predict(batch).double() - batch.target(k_fin).double()
        total += error.square().sum(0).cpu()
    return (total / num_sets).float()


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


def test_mse(estimator: Estimator, config: PowerSpectrumConfig, set_size: int) -> list[float]:
    """Per-k MSE of ``estimator`` on the fixed test set of ``config`` at ``set_size``."""

    def on_batch(batch: PowerSpectrumBatch) -> Tensor:
        return estimator.predict(batch.x, batch.y)

    per_k = evaluate_mse(
        on_batch,
        k_fin=config.k_fin,
        k_max=config.k_max,
        set_size=set_size,
        num_sets=config.test_sets,
        seed=config.test_seed,
        noise=config.noise,
    )
    return [float(v) for v in per_k]


def sweep_sizes(config: PowerSpectrumConfig) -> list[int]:
    """The set sizes of figure 4: ``sweep_sizes`` and the training size, sorted."""
    return sorted({*config.sweep_sizes, config.set_size})


def size_sweep(estimator: Estimator, config: PowerSpectrumConfig) -> dict[str, float]:
    """MSE at every sweep size on the same functions (only the sample positions change)."""
    log_power, phase = fixed_spectra(config.sweep_sets, config.k_max, seed=config.test_seed)
    sweep: dict[str, float] = {}
    for size in sweep_sizes(config):
        batch = sample_at(log_power, phase, size, seed=config.test_seed, noise=config.noise)
        sweep[str(size)] = float(squared_errors(estimator.predict, batch, config.k_fin).mean())
    return sweep


def noise_tests(
    estimator: Estimator, prior: Estimator, config: PowerSpectrumConfig
) -> dict[str, Any]:
    """Figure 5: a model trained at ``noise_k_max`` tested on functions with every
    ``noise_test_k_max``, beside the prior; with four example predictions per test."""
    k_fin = config.noise_k_fin
    tests = {}
    for k_max in config.noise_test_k_max:
        log_power, phase = fixed_spectra(config.noise_sets, k_max, seed=config.test_seed)
        batch = sample_at(log_power, phase, config.set_size, seed=config.test_seed)
        errors = squared_errors(estimator.predict, batch, k_fin)
        with torch.no_grad():
            examples = estimator.predict(batch.x[:4], batch.y[:4]).double().cpu()
        prior_errors = squared_errors(prior.predict, batch, k_fin)
        tests[str(k_max)] = {
            "per_k_mse": errors.mean(0).tolist(),
            "mse": float(errors.mean()),
            "prior_mse": float(prior_errors.mean()),
            "example_true_log_power": batch.target(k_fin)[:4].tolist(),
            "example_predicted_log_power": examples.tolist(),
        }
    return tests


def regret_fraction(mse: float, prior_mse: float, bayes_mse: float) -> float:
    r"""How much of the way from the Bayes floor to the prior an estimator still is:
    :math:`(\mathrm{MSE} - \mathrm{MSE}_{\text{Bayes}}) /
    (\mathrm{MSE}_{\text{prior}} - \mathrm{MSE}_{\text{Bayes}})` (0: the floor, 1: the
    prior, > 1: worse than the prior)."""
    gap = prior_mse - bayes_mse
    return (mse - bayes_mse) / gap if gap > 0 else float("nan")


def error_summary(set_errors: Tensor, bayes_errors: Tensor | None = None) -> dict[str, float]:
    """The test MSE of per-set mean squared errors ``(B,)``, its standard error over the
    sets, and, with the Bayes estimate's ``(B,)`` on the same sets, the paired difference
    ``minus_bayes`` and its standard error (common random numbers: far smaller than either
    MSE's own)."""
    errors = set_errors.double()
    count = errors.numel()
    out = {
        "mse": float(errors.mean()),
        "se": float(errors.std() / count**0.5) if count > 1 else 0.0,
    }
    if bayes_errors is not None:
        diff = errors - bayes_errors.double()
        out["minus_bayes"] = float(diff.mean())
        out["minus_bayes_se"] = float(diff.std() / count**0.5) if count > 1 else 0.0
    return out
