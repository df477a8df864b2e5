"""A tiny max-regression run, once for the tests of this folder (seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TINY: dict[str, Any] = {
    "seeds": [0, 1],
    "steps": 4,
    "batch_size": 8,
    "width": 8,
    "test_sets": 40,
    "valid_every": 2,
    "valid_sets": 30,
    "workers": 1,
    "engine": {"accelerator": "cpu", "progress": False, "logger": "none"},
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    pytest.importorskip("lightning")
    pytest.importorskip("matplotlib")
    from deepsets.experiments.max_regression.config import MaxRegressionConfig
    from deepsets.experiments.max_regression.run import run_max_regression

    out = tmp_path_factory.mktemp("tiny-max-regression")
    return out, run_max_regression(MaxRegressionConfig(out=str(out), **TINY))
