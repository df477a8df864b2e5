"""The baselines: the prior and the least-squares Fourier fit, as functions and estimators."""

from __future__ import annotations

import math

import pytest
import torch

from deepsets.experiments.power_spectrum.baselines import (
    PRIOR_MSE,
    LeastSquaresEstimator,
    PriorEstimator,
    least_squares_log_power,
    prior_log_power,
)
from deepsets.experiments.power_spectrum.evaluate import evaluate_mse

from .conftest import sample_batch


def test_prior_mse_on_data_is_pi_squared_over_six() -> None:
    per_k = evaluate_mse(
        lambda b: prior_log_power(4, b.x.shape[0]),
        k_fin=4,
        k_max=4,
        set_size=2,
        num_sets=16_384,
        seed=5,
        chunk=4096,
    )
    assert per_k.shape == (4,)
    assert torch.allclose(per_k, torch.full((4,), math.pi**2 / 6), atol=0.1)


def test_least_squares_is_exact_on_noiseless_low_frequency_data() -> None:
    data = sample_batch(2, batch=32, set_size=64, k_max=3)
    estimate = least_squares_log_power(data.x, data.y, k_fit=5, k_fin=3)
    assert estimate.shape == (32, 3)
    assert float((estimate - data.target(3)).square().mean()) < 1e-6
    # Frequencies 4 and 5 are absent: their fitted power is ~0.
    high = least_squares_log_power(data.x, data.y, k_fit=5, k_fin=5)[:, 3:]
    assert float(high.max()) < math.log(1e-8)


def test_least_squares_aliases_when_the_fit_is_too_short() -> None:
    data = sample_batch(2, batch=64, set_size=64, k_max=16)
    short = least_squares_log_power(data.x, data.y, k_fit=2, k_fin=2)
    assert float((short - data.target(2)).square().mean()) > 1e-3


def test_least_squares_rejects_k_fin_above_k_fit() -> None:
    data = sample_batch(0)
    with pytest.raises(ValueError, match="k_fin must be <= k_fit"):
        least_squares_log_power(data.x, data.y, k_fit=2, k_fin=3)


def test_estimators_predict_what_the_functions_compute() -> None:
    data = sample_batch(3, batch=5, set_size=32, k_max=3)
    prior = PriorEstimator(3).predict(data.x, data.y)
    assert torch.equal(prior, prior_log_power(3, 5))
    k = torch.arange(1, 4, dtype=torch.float32)
    assert torch.allclose(prior[0], -2 * k.log() - 0.5772156649015329)  # -2 log k - γ
    fit = LeastSquaresEstimator(4, 3).predict(data.x, data.y)
    assert torch.equal(fit, least_squares_log_power(data.x, data.y, 4, 3))
    assert pytest.approx(math.pi**2 / 6) == PRIOR_MSE
    with pytest.raises(ValueError, match="k_fin must be <= k_fit"):
        LeastSquaresEstimator(2, 3)
