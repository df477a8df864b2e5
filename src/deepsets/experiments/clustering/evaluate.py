"""Evaluation of the amortized-clustering experiment: the log-likelihood per data point of
any estimator's mixtures on the fixed test set (the paper's LL0 of Table 3).

An estimator is any object with ``predict(batch) -> MixtureParams`` (:class:`Estimator`):
the networks (:class:`~deepsets.experiments.clustering.model.MixtureEstimator`) and the
baselines (:mod:`~deepsets.experiments.clustering.baselines`) alike. The score of a
dataset is its mean log-likelihood per point; the test score is the mean over datasets.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from .config import ClusteringConfig
from .data import MixtureBatch, MixtureParams, fixed_test_sets, set_log_likelihood

__all__ = ["Estimator", "evaluate_log_likelihood", "evaluate_scores", "per_set_log_likelihood"]


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
) -> Tensor:
    """Log-likelihood per point of every test dataset under ``estimator``'s mixture:
    ``(num_sets,)``, float64 (the test set of ``seed``, drawn chunk by chunk)."""
    scores = [
        set_log_likelihood(batch.x, batch.mask, estimator.predict(batch)).double()
        for batch in fixed_test_sets(
            num_sets, seed=seed, min_points=min_points, max_points=max_points
        )
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
