"""Evaluation: squared errors of any estimator, chunked or not."""

from __future__ import annotations

import torch

from deepsets.experiments.power_spectrum.baselines import least_squares_log_power
from deepsets.experiments.power_spectrum.data import fixed_spectra, sample_at
from deepsets.experiments.power_spectrum.evaluate import squared_errors


def test_squared_errors_do_not_depend_on_chunking() -> None:
    log_power, phase = fixed_spectra(10, 4, seed=2)
    batch = sample_at(log_power, phase, 16, seed=2)

    def predict(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return least_squares_log_power(x, y, 4, 4) + 0.1 * y.mean(1, keepdim=True)

    whole = squared_errors(predict, batch, 4)
    chunked = squared_errors(predict, batch, 4, max_elements=16 * 3)
    assert whole.shape == (10, 4)
    assert torch.allclose(whole, chunked)
    manual = (predict(batch.x, batch.y).double() - batch.log_power.double()).square()
    assert torch.allclose(whole, manual)
