"""A tiny clustering run, once for the tests of this folder (seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

TINY: dict[str, Any] = {
    "seeds": [0, 1],
    "steps": 4,
    "lr_drop_step": 2,
    "batch_size": 3,
    "min_points": 5,
    "max_points": 20,
    "width": 8,
    "num_inducing": 2,
    "test_sets": 12,
    "workers": 1,
    "engine": {"accelerator": "cpu", "progress": False, "logger": "none"},
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    pytest.importorskip("lightning")
    pytest.importorskip("matplotlib")
    from deepsets.experiments.clustering.config import ClusteringConfig
    from deepsets.experiments.clustering.run import run_clustering

    out = tmp_path_factory.mktemp("tiny-clustering")
    metrics = run_clustering(ClusteringConfig(out=str(out), **TINY))
    return out, metrics


def nan_padded(sets: list[torch.Tensor], extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``sets`` padded to the largest plus ``extra`` rows of NaN, and their bool mask."""
    width = max(len(s) for s in sets) + extra
    x = torch.full((len(sets), width, sets[0].shape[-1]), float("nan"))
    mask = torch.zeros(len(sets), width, dtype=torch.bool)
    for b, s in enumerate(sets):
        x[b, : len(s)] = s
        mask[b, : len(s)] = True
    return x, mask
