"""The baselines: the prior and the least-squares Fourier fit, as functions and estimators."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from deepsets.experiments.power_spectrum.baselines import (
    PRIOR_MSE,
    LeastSquaresEstimator,
    PriorEstimator,
    default_k_grid,
    least_squares_log_power,
    prior_log_power,
    select_least_squares,
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


def _noisy_sets(count: int, set_size: int, k_max: int, noise: float, seed: int) -> Any:
    from deepsets.experiments._common import generator_for
    from deepsets.experiments.power_spectrum.data import sample_power_spectrum

    return sample_power_spectrum(
        count, set_size, k_max, generator=generator_for(seed), noise=noise, dtype=torch.float64
    )


def test_ridge_matches_normal_equations_reference() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 9, generator=g, dtype=torch.float64) * 6.2
    y = torch.randn(1, 9, generator=g, dtype=torch.float64)
    cols = [torch.ones(9, dtype=torch.float64)]
    cols += [torch.cos(k * x[0]) for k in (1, 2)] + [torch.sin(k * x[0]) for k in (1, 2)]
    design = torch.stack(cols, 1)
    penalty = torch.diag(torch.tensor([0.0, 0.5, 0.5, 0.5, 0.5], dtype=torch.float64))
    coef = torch.linalg.solve(design.T @ design + penalty, design.T @ y[0])
    expected = torch.log(coef[1:3] ** 2 + coef[3:5] ** 2)
    got = least_squares_log_power(x, y, 2, 2, ridge=0.5)[0]
    assert got.dtype == torch.float64
    assert torch.allclose(got, expected, atol=1e-12)


def test_selection_matches_direct_fits_on_the_validation_draw() -> None:
    valid = _noisy_sets(128, 24, 6, 0.2, 3)
    grid = default_k_grid(2, 24, 6)
    choice = select_least_squares(valid, 2, k_grid=grid, ridges=(0.0, 1.0))
    for key, mse in choice.table.items():
        k_fit, ridge = int(key.split(",")[0][2:]), float(key.split("=")[2])
        direct = least_squares_log_power(valid.x, valid.y, k_fit, 2, ridge=ridge)
        reference = float((direct - valid.target(2)).square().mean())
        if reference < 10 * choice.valid_mse:
            assert abs(reference - mse) < 1e-6 * reference
        else:  # near-square fits: normal equations and SVD differ, both are far off
            assert mse > 10 * choice.valid_mse
    assert choice.valid_mse == min(choice.table.values())
    assert choice.k_fin == 2 and f"K={choice.k_fit},ridge={choice.ridge:g}" in choice.table
    fit = choice.predict(valid.x, valid.y)
    direct = least_squares_log_power(valid.x, valid.y, choice.k_fit, 2, ridge=choice.ridge)
    assert torch.equal(fit, direct)


def test_selection_rejects_empty_or_short_grids() -> None:
    valid = _noisy_sets(4, 24, 6, 0.2, 3)
    with pytest.raises(ValueError, match="must not be empty"):
        select_least_squares(valid, 2, k_grid=[])
    with pytest.raises(ValueError, match="every k_fit must be >= k_fin=2"):
        select_least_squares(valid, 2, k_grid=[1, 4])
    with pytest.raises(ValueError, match="no candidate fits"):
        select_least_squares(_noisy_sets(4, 6, 6, 0.2, 3), 4, k_grid=[4])


def test_default_grid() -> None:
    grid = default_k_grid(8, 512, 512)
    assert grid[0] == 8 and grid[-1] == 255 and 64 in grid and grid == sorted(set(grid))
    # capped at k_max: frequencies the functions do not have cannot help
    assert default_k_grid(8, 1024, 64)[-1] == 64
    assert default_k_grid(4, 128, 4) == [4]


def test_the_chosen_fit_does_not_depend_on_the_test_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation never touches the test set: replacing every test draw by noise changes
    the test scores, never the chosen K and λ."""
    pytest.importorskip("lightning")
    from deepsets.experiments.power_spectrum import regimes
    from deepsets.experiments.power_spectrum.config import PowerSpectrumConfig

    config = PowerSpectrumConfig(valid_sets=64, regime_test_sets=32, ridges=[0.1, 1.0])
    regime = regimes.REGIMES["noisy"]
    honest = regimes._references(config, regime)
    real = regimes.regime_sets

    def scrambled(regime: Any, count: int, *, stream: str, seed: int) -> Any:
        batch = real(regime, count, stream=stream, seed=seed)
        if stream == "test":
            batch.y = torch.randn(batch.y.shape, dtype=batch.y.dtype)
        return batch

    monkeypatch.setattr(regimes, "regime_sets", scrambled)
    other = regimes._references(config, regime)
    for name in ("lstsq", "ridge"):
        assert (other[name]["k_fit"], other[name]["ridge"]) == (
            honest[name]["k_fit"],
            honest[name]["ridge"],
        )
        assert other[name]["valid_mse"] == honest[name]["valid_mse"]
        assert other[name]["per_k_mse"] != honest[name]["per_k_mse"]
