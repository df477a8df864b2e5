"""A tiny clustering run, once for the tests of this folder (seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
