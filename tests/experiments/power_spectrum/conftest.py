"""A tiny power-spectrum run, once for the tests of this folder (seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TINY: dict[str, Any] = {
    "seeds": [0, 1],
    "encodings": ["circle", "raw"],
    "depth": 1,
    "width": 4,
    "steps": 5,
    "batch_size": 4,
    "set_size": 16,
    "grid_depths": [1, 2],
    "grid_widths": [4],
    "grid_steps": 5,
    "grid_seeds": [0, 1],
    "noise_steps": 2,
    "noise_depth": 1,
    "noise_width": 4,
    "noise_sets": 8,
    "noise_test_k_max": [8, 16],
    "test_sets": 32,
    "sweep_sets": 16,
    "sweep_sizes": [8, 64],
    "regime_test_sets": 16,
    "valid_sets": 16,
    "ridges": [1.0],
    "floor_sizes": [16, 64],
    "floor_sets": 8,
    "generic": {"steps": 3, "batch_size": 4, "hidden": [8], "rho_hidden": [8]},
    "structured": {"steps": 3, "batch_size": 4, "hidden": [8], "num_frequencies": 8},
    "workers": 1,
    "engine": {"accelerator": "cpu", "progress": False, "logger": "none"},
}


def sample_batch(seed: int, *, batch: int = 8, set_size: int = 16, k_max: int = 4) -> Any:
    """A seeded batch of functions of eq. 4 (for the tests of this folder)."""
    from deepsets.experiments._common import generator_for
    from deepsets.experiments.power_spectrum.data import sample_power_spectrum

    return sample_power_spectrum(batch, set_size, k_max, generator=generator_for(seed))


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    pytest.importorskip("lightning")
    pytest.importorskip("matplotlib")
    from deepsets.experiments.power_spectrum.config import PowerSpectrumConfig
    from deepsets.experiments.power_spectrum.run import run_power_spectrum

    out = tmp_path_factory.mktemp("tiny-study")
    metrics = run_power_spectrum(PowerSpectrumConfig(out=str(out), **TINY))
    return out, metrics
