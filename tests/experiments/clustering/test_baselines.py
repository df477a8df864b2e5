"""The oracle and the one-Gaussian floor."""

from __future__ import annotations

import math

import pytest
import torch

from deepsets.experiments._common import generator_for
from deepsets.experiments.clustering.baselines import (
    OneGaussianEstimator,
    OracleEstimator,
    one_gaussian,
)
from deepsets.experiments.clustering.data import MixtureParams, sample_mixtures, set_log_likelihood
from deepsets.experiments.clustering.evaluate import per_set_log_likelihood


def test_oracle_is_finite_and_above_the_fitted_floor() -> None:
    oracle = per_set_log_likelihood(OracleEstimator(), num_sets=300, seed=1)
    floor = per_set_log_likelihood(OneGaussianEstimator(), num_sets=300, seed=1)
    assert torch.isfinite(oracle).all() and torch.isfinite(floor).all()
    assert oracle.mean() > floor.mean() + 1.0


def test_oracle_lies_within_its_information_bounds_and_near_the_paper() -> None:
    # -LL of the true mixture is the entropy H(X) per point (up to sampling), and
    # H(X|Z) <= H(X) <= H(X|Z) + H(Z): H(X|Z) = log(2 pi e sigma^2) for an isotropic 2-D
    # Gaussian, E[H(Z)] = psi(5) - psi(2) = 1/2 + 1/3 + 1/4 for Dirichlet(1) weights.
    h_x_given_z = math.log(2 * math.pi * math.e * 0.3**2)
    h_z = 1 / 2 + 1 / 3 + 1 / 4
    scores = per_set_log_likelihood(OracleEstimator(), num_sets=1000, seed=2)
    se = float(scores.std()) / math.sqrt(1000)
    mean = float(scores.mean())
    assert -(h_x_given_z + h_z) - 3 * se < mean < -h_x_given_z
    assert mean == pytest.approx(-1.4726, abs=4 * se)  # Table 3 of the paper


def test_one_gaussian_is_the_maximum_likelihood_fit() -> None:
    batch = sample_mixtures(4, generator=generator_for(3), min_points=20, max_points=40)
    fit = one_gaussian(batch.x, batch.mask)
    for b in range(4):
        points = batch.x[b, : int(batch.sizes[b])].double()
        mean = points.mean(0)
        variance = (points - mean).pow(2).sum(1).mean() / 2
        assert fit.means[b, 0].double() == pytest.approx(mean, abs=1e-5)
        assert fit.sigma[b, 0].double() ** 2 == pytest.approx(variance.item(), rel=1e-5)
    best = set_log_likelihood(batch.x, batch.mask, fit)
    for shift, scale in ((0.1, 1.0), (0.0, 1.1), (0.0, 0.9)):
        other = MixtureParams(fit.log_weights, fit.means + shift, fit.sigma * scale)
        assert (set_log_likelihood(batch.x, batch.mask, other) < best).all()


def test_reprs() -> None:
    assert repr(OracleEstimator()) == "OracleEstimator()"
    assert repr(OneGaussianEstimator()) == "OneGaussianEstimator()"
