"""The Bayes floor: its numerics against independent references (scipy's E1, Monte Carlo),
exactness, a brute-force importance-sampling check, and its optimality against the
baselines."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsets.experiments._common import generator_for
from deepsets.experiments.power_spectrum.baselines import least_squares_log_power, prior_log_power
from deepsets.experiments.power_spectrum.bayes import (
    BayesEstimator,
    _coefficient_space,
    _function_space,
    bayes_log_power,
    exp1,
    expected_log_norm,
    fourier_design,
    isotropic_expected_log_norm,
    prior_variance,
)
from deepsets.experiments.power_spectrum.data import (
    REGIMES,
    PowerSpectrumBatch,
    Regime,
    regime_sets,
    sample_power_spectrum,
)

special = pytest.importorskip("scipy.special")

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return generator_for(seed)


def _sets(count: int, set_size: int, k_max: int, noise: float, seed: int) -> PowerSpectrumBatch:
    return sample_power_spectrum(
        count, set_size, k_max, generator=_gen(seed), noise=noise, dtype=F64
    )


def test_exp1_matches_scipy() -> None:
    x = torch.cat(
        [torch.logspace(-10, 2.8, 3000, dtype=F64), torch.linspace(0.5, 4, 701, dtype=F64)]
    )
    reference = torch.from_numpy(special.exp1(x.numpy()))
    assert torch.allclose(exp1(x), reference, rtol=1e-13, atol=0)


def test_quadrature_matches_isotropic_closed_form() -> None:
    # E ln|z|^2 = ln|mu|^2 + E1(|mu|^2 / s^2) for z ~ N(mu, s^2/2 I); E1 from scipy.
    g = _gen(0)
    scale = torch.logspace(-4, 1, 400, dtype=F64)
    mean = torch.randn(400, 2, generator=g, dtype=F64) * scale[:, None]
    spread = torch.logspace(-6, 1, 400, dtype=F64)[torch.randperm(400, generator=g)]
    cov = torch.eye(2, dtype=F64) * (spread / 2)[:, None, None]
    m2 = mean.square().sum(-1)
    reference = m2.log() + torch.from_numpy(special.exp1((m2 / spread).numpy()))
    assert torch.allclose(expected_log_norm(mean, cov), reference, rtol=0, atol=1e-11)
    assert torch.allclose(isotropic_expected_log_norm(m2, spread), reference, rtol=0, atol=1e-11)


def test_quadrature_zero_covariance_is_log_norm() -> None:
    scale = torch.logspace(-5, 1, 200, dtype=F64)[:, None]
    mean = torch.randn(200, 2, generator=_gen(1), dtype=F64) * scale
    got = expected_log_norm(mean, torch.zeros(200, 2, 2, dtype=F64))
    assert torch.allclose(got, mean.square().sum(-1).log(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", range(4))
def test_quadrature_matches_monte_carlo_anisotropic(case: int) -> None:
    g = _gen(10 + case)
    root = torch.randn(2, 2, generator=g, dtype=F64)
    cov = root @ root.T * [1e-3, 0.05, 1.0, 4.0][case]
    mean = torch.randn(2, generator=g, dtype=F64) * 0.4
    z = mean + torch.randn(400_000, 2, generator=g, dtype=F64) @ torch.linalg.cholesky(cov).T
    sample = z.square().sum(-1).log()
    se = float(sample.std()) / 400_000**0.5
    assert abs(float(expected_log_norm(mean, cov)) - float(sample.mean())) < 5 * se


@settings(max_examples=25, deadline=None)
@given(angle=st.floats(0, 2 * math.pi), seed=st.integers(0, 1000))
def test_quadrature_is_rotation_invariant(angle: float, seed: int) -> None:
    g = _gen(seed)
    root = torch.randn(2, 2, generator=g, dtype=F64)
    cov, mean = root @ root.T, torch.randn(2, generator=g, dtype=F64)
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s], [s, c]], dtype=F64)
    got = expected_log_norm(rot @ mean, rot @ cov @ rot.T)
    assert abs(float(got) - float(expected_log_norm(mean, cov))) < 1e-10


@settings(max_examples=15, deadline=None)
@given(shift=st.floats(0, 2 * math.pi), seed=st.integers(0, 1000))
def test_bayes_is_invariant_to_shifting_the_positions(shift: float, seed: int) -> None:
    # The prior is stationary, so shifting every x_n by c leaves E[log p_k | data] unchanged.
    batch = _sets(4, 5, 6, 0.2, seed)
    estimator = BayesEstimator(k_max=6, k_fin=3, noise=0.2)
    base = estimator.predict(batch.x, batch.y)
    assert torch.allclose(estimator.predict(batch.x + shift, batch.y), base, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000))
def test_bayes_is_invariant_to_permuting_the_samples(seed: int) -> None:
    batch = _sets(4, 9, 6, 0.2, seed)
    order = torch.randperm(9, generator=_gen(seed + 1))
    estimator = BayesEstimator(k_max=6, k_fin=3, noise=0.2)
    base = estimator.predict(batch.x, batch.y)
    assert torch.allclose(estimator.predict(batch.x[:, order], batch.y[:, order]), base)


@pytest.mark.parametrize(("set_size", "atol"), [(11, 1e-4), (32, 1e-9)])
def test_exact_when_noiseless_and_determined(set_size: int, atol: float) -> None:
    # N = 2 k_max + 1 is just determined: random positions can be ill-conditioned (errors
    # up to ~4e-5 there, 2e-13 typically); N = 32 is well determined.
    batch = _sets(256, set_size, 5, 0.0, 2)
    got = bayes_log_power(batch.x, batch.y, k_max=5, k_fin=5, noise=0.0)
    assert torch.allclose(got, batch.target(5), rtol=0, atol=atol)
    assert float((got - batch.target(5)).abs().median()) < 1e-10


def test_coefficient_and_function_space_agree() -> None:
    batch = _sets(16, 12, 4, 0.3, 3)
    m1, c1 = _coefficient_space(batch.x, batch.y, 4, 3, 0.3)
    m2, c2 = _function_space(batch.x, batch.y, 4, 3, 0.3, 0.0)
    assert torch.allclose(m1, m2, atol=1e-10) and torch.allclose(c1, c2, atol=1e-10)


@pytest.mark.parametrize(("set_size", "noise"), [(3, 0.3), (7, 0.5), (4, 0.1)])
def test_matches_importance_sampling(set_size: int, noise: float) -> None:
    # Brute force: prior samples of all coefficients, weighted by the likelihood.
    k_max, k_fin, draws = 2, 2, 200_000
    batch = _sets(3, set_size, k_max, noise, 4 + set_size)
    exact = bayes_log_power(batch.x, batch.y, k_max=k_max, k_fin=k_fin, noise=noise)
    std = prior_variance(k_max).sqrt().repeat(2)
    g = _gen(5)
    for i in range(3):
        theta = torch.randn(draws, 2 * k_max, generator=g, dtype=F64) * std  # (S, 2K)
        design = fourier_design(batch.x[i : i + 1], k_max)[0]  # (N, 2K)
        residual = batch.y[i] - theta @ design.T  # (S, N)
        log_w = -0.5 * residual.square().sum(-1) / noise**2
        w = (log_w - log_w.max()).exp()
        w = w / w.sum()
        log_p = (theta[:, :k_fin].square() + theta[:, k_max : k_max + k_fin].square()).log()
        estimate = (w[:, None] * log_p).sum(0)
        se = ((w[:, None] ** 2 * (log_p - estimate).square()).sum(0)).sqrt()
        assert torch.all((exact[i] - estimate).abs() < 5 * se + 1e-3), (exact[i], estimate, se)


#: Three regimes of the study and a small aliasing one (the study's takes ~20 s), with a
#: good least-squares K for each.
CASES = {
    "blog": (REGIMES["blog"], 4),
    "noisy": (REGIMES["noisy"], 4),
    "underdetermined": (REGIMES["underdetermined"], 8),
    "small-aliasing": (Regime("small-aliasing", k_max=96, k_fin=4, set_size=64, noise=0.0), 12),
}


@pytest.mark.parametrize("name", list(CASES))
def test_no_baseline_beats_bayes_beyond_error(name: str) -> None:
    regime, k_fit = CASES[name]
    count = 256
    batch = regime_sets(regime, count, stream="valid", seed=7)
    target = batch.target(regime.k_fin)
    bayes = BayesEstimator(k_max=regime.k_max, k_fin=regime.k_fin, noise=regime.noise)
    bayes_error = (bayes.predict(batch.x, batch.y) - target).square().mean(1)
    others = {
        "prior": prior_log_power(regime.k_fin, count).double(),
        "least_squares": least_squares_log_power(batch.x, batch.y, k_fit, regime.k_fin),
    }
    for other in others.values():
        diff = (other - target).square().mean(1) - bayes_error  # (count,)
        se = float(diff.std()) / count**0.5
        assert float(diff.mean()) > -3 * se - 1e-9


def test_estimator_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="k_fin <= k_max"):
        BayesEstimator(k_max=2, k_fin=3, noise=0.0)
    with pytest.raises(ValueError, match="noise must be a number >= 0"):
        BayesEstimator(k_max=2, k_fin=1, noise=-1.0)
