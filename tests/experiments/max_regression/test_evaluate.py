"""Scores on the fixed test set, against a definition computed here."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from deepsets.experiments.max_regression.config import MaxRegressionConfig
from deepsets.experiments.max_regression.data import fixed_test_set
from deepsets.experiments.max_regression.evaluate import score_model


class _Offset(nn.Module):
    """Predicts max(x) + offset on the real elements: a known error."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        values = x[..., 0].masked_fill(~mask, -torch.inf)
        return values.amax(dim=1, keepdim=True) + self.offset


def test_mae_of_a_known_error_and_per_size() -> None:
    pytest.importorskip("lightning")
    config = MaxRegressionConfig(test_sets=300)
    scores = score_model(_Offset(0.25), config)
    assert scores["mae"] == pytest.approx(0.25, abs=1e-4)
    by_size = scores["mae_by_size"]
    assert isinstance(by_size, dict) and set(by_size) <= {str(n) for n in range(1, 11)}
    assert all(v == pytest.approx(0.25, abs=1e-4) for v in by_size.values())


def test_mae_by_size_weights_sets_by_size() -> None:
    pytest.importorskip("lightning")
    config = MaxRegressionConfig(test_sets=200)
    _, mask, _ = fixed_test_set(200, 10, config.test_seed)

    class _SizeError(nn.Module):
        def forward(self, x: Tensor, m: Tensor) -> Tensor:  # error = set size
            values = x[..., 0].masked_fill(~m, -torch.inf)
            return values.amax(dim=1, keepdim=True) + m.sum(dim=1, keepdim=True)

    scores = score_model(_SizeError(), config)
    sizes = mask.sum(dim=1).double()
    assert scores["mae"] == pytest.approx(float(sizes.mean()), rel=1e-5)
    assert scores["mae_by_size"]["3"] == pytest.approx(3.0, rel=1e-5)  # type: ignore[index]
