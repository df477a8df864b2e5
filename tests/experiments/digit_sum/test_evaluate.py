"""Exact-sum accuracy of an oracle and of an oracle that is off by 0.7."""

from __future__ import annotations

import torch

from deepsets import DeepSetsInvariant
from deepsets.experiments.digit_sum.evaluate import evaluate_accuracy


def _oracle(offset: float = 0.0) -> DeepSetsInvariant:
    """φ = identity on one-hot digits, sum pooling, ρ(h) = Σ_d d·h_d + offset: the exact sum."""
    model = DeepSetsInvariant(10, [], [], 1)
    with torch.no_grad():
        model.rho[-1].weight.copy_(torch.arange(10.0)[None])
        model.rho[-1].bias.fill_(offset)
    return model


def test_evaluate_accuracy_scores_exact_and_wrong_sums() -> None:
    exact = evaluate_accuracy(_oracle(), "integer", [1, 5, 100], sets_per_size=50, seed=0)
    assert all(r["accuracy"] == 1.0 for r in exact.values())
    assert all(r["mae"] < 1e-3 for r in exact.values())
    off = evaluate_accuracy(_oracle(0.7), "integer", [1, 50], sets_per_size=50, seed=0)
    assert all(r["accuracy"] == 0.0 for r in off.values())
    assert all(abs(r["mae"] - 0.7) < 1e-3 for r in off.values())
