"""Evaluation of the amortized-clustering experiment: the log-likelihood per data point of
any estimator's mixtures on the fixed test set (the paper's LL0 of Table 3).

An estimator is any object with ``predict(batch) -> MixtureParams`` (:class:`Estimator`):
the networks (:class:`~deepsets.experiments.clustering.model.MixtureEstimator`) and the
baselines (:mod:`~deepsets.experiments.clustering.baselines`) alike. The score of a
dataset is its mean log-likelihood per point; the test score is the mean over datasets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn

from .config import ClusteringConfig
from .data import (
    TEST_STREAM,
    VALID_STREAM,
    MixtureBatch,
    MixtureParams,
    fixed_test_sets,
    set_log_likelihood,
)
from .model import MixtureEstimator

__all__ = [
    "Estimator",
    "evaluate_log_likelihood",
    "evaluate_scores",
    "per_set_log_likelihood",
    "validation_score",
]


class Estimator(Protocol):
    """Anything that outputs a mixture for every set of a batch."""

    def predict(self, batch: MixtureBatch) -> MixtureParams:
        """The mixtures of the ``B`` sets of ``batch``."""
        ...


def per_set_log_likelihood(
    estimator: Estimator,
    *,
    num_sets: int,
    seed: int,
    min_points: int = 100,
    max_points: int = 500,
    stream: int = TEST_STREAM,
) -> Tensor:
    """Log-likelihood per point of every test dataset under ``estimator``'s mixture:
    ``(num_sets,)``, float64 (the fixed sets of ``seed`` and ``stream``, drawn chunk by
    chunk)."""
    batches = fixed_test_sets(
        num_sets, seed=seed, min_points=min_points, max_points=max_points, stream=stream
    )
    scores = [
        set_log_likelihood(batch.x, batch.mask, estimator.predict(batch)).double()
        for batch in batches
    ]
    return torch.cat(scores)


def evaluate_scores(estimator: Estimator, config: ClusteringConfig) -> Tensor:
    """Log-likelihood per point of every dataset of the configured test set (the
    ``config.test_sets`` datasets of ``config.test_seed``): ``(test_sets,)``."""
    return per_set_log_likelihood(
        estimator,
        num_sets=config.test_sets,
        seed=config.test_seed,
        min_points=config.min_points,
        max_points=config.max_points,
    )


def evaluate_log_likelihood(estimator: Estimator, config: ClusteringConfig) -> float:
    """The test score of ``estimator``: the mean of :func:`evaluate_scores`."""
    return float(evaluate_scores(estimator, config).mean())


def validation_score(config: ClusteringConfig) -> Callable[[nn.Module], float]:
    """``model -> minus the mean log-likelihood per point`` on the ``config.valid_sets``
    validation datasets (drawn once, here; another stream of ``config.test_seed``, so
    they never overlap the test set), for :class:`~deepsets.training.KeepBest` (lower is
    better)."""
    batches = list(
        fixed_test_sets(
            config.valid_sets,
            seed=config.test_seed,
            min_points=config.min_points,
            max_points=config.max_points,
            stream=VALID_STREAM,
        )
    )

    def score(model: nn.Module) -> float:
        network = MixtureEstimator(model)
        scores = [set_log_likelihood(b.x, b.mask, network.predict(b)) for b in batches]
        total = sum(float(s.sum()) for s in scores)
        return -total / config.valid_sets

    return score
