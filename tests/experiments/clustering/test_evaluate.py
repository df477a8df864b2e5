"""Evaluation: the test score of an estimator."""

from __future__ import annotations

import pytest
import torch

from deepsets.experiments.clustering.baselines import OracleEstimator
from deepsets.experiments.clustering.config import ClusteringConfig
from deepsets.experiments.clustering.data import (
    VALID_STREAM,
    MixtureBatch,
    MixtureParams,
    fixed_test_sets,
    mixture_log_prob,
)
from deepsets.experiments.clustering.evaluate import (
    evaluate_log_likelihood,
    evaluate_scores,
    per_set_log_likelihood,
    validation_score,
)


class Uniform:
    """Every component at the origin, σ = 1: a fixed density whatever the data."""

    def predict(self, batch: MixtureBatch) -> MixtureParams:
        b = batch.x.shape[0]
        return MixtureParams(torch.full((b, 2), 0.5).log(), torch.zeros(b, 2, 2), torch.ones(b, 2))


def test_score_is_the_mean_over_sets_of_the_mean_over_points() -> None:
    config = ClusteringConfig(test_sets=7, test_seed=4, min_points=3, max_points=6)
    expected = []
    for batch in fixed_test_sets(7, seed=4, min_points=3, max_points=6):
        for b in range(batch.x.shape[0]):
            points = batch.x[b : b + 1, : int(batch.sizes[b])]
            params = Uniform().predict(batch).index(torch.tensor([b]))
            expected.append(float(mixture_log_prob(points, params).mean()))
    scores = evaluate_scores(Uniform(), config)
    assert scores.dtype == torch.float64 and scores.shape == (7,)
    assert torch.allclose(scores, torch.tensor(expected, dtype=torch.float64), atol=1e-6)
    assert evaluate_log_likelihood(Uniform(), config) == pytest.approx(sum(expected) / 7, abs=1e-6)


def test_the_oracle_beats_a_fixed_density() -> None:
    oracle = per_set_log_likelihood(OracleEstimator(), num_sets=50, seed=0)
    uniform = per_set_log_likelihood(Uniform(), num_sets=50, seed=0)
    assert (oracle > uniform).all()


def test_validation_score_is_minus_the_mean_log_likelihood_on_its_own_draw() -> None:
    pytest.importorskip("lightning")
    from deepsets.experiments.clustering.model import MixtureEstimator, build_model

    config = ClusteringConfig(valid_sets=6, test_sets=6, test_seed=3, min_points=4, max_points=9)
    torch.manual_seed(0)
    model = build_model("rff", width=8).eval()
    network = MixtureEstimator(model)
    on_valid = per_set_log_likelihood(
        network, num_sets=6, seed=3, min_points=4, max_points=9, stream=VALID_STREAM
    )
    assert validation_score(config)(model) == pytest.approx(-float(on_valid.mean()), rel=1e-6)
    valid = next(fixed_test_sets(6, seed=3, min_points=4, max_points=9, stream=VALID_STREAM))
    test = next(fixed_test_sets(6, seed=3, min_points=4, max_points=9))
    assert not torch.equal(valid.x[0, :4], test.x[0, :4])  # another draw than the test set
