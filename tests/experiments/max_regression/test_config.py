"""Settings of the max-regression experiment: presets and validation."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("lightning")

from deepsets.experiments.max_regression.config import (
    PAPER_MAE,
    PRESETS,
    MaxRegressionConfig,
)
from deepsets.experiments.max_regression.data import Row


def test_paper_preset_is_table_1s_training() -> None:
    paper = MaxRegressionConfig(preset="paper", **PRESETS["paper"])
    assert (paper.steps, paper.batch_size, paper.max_size, paper.width) == (20_000, 128, 10, 64)
    assert (paper.lr, paper.lr_schedule) == (1e-3, "constant")
    assert paper.valid_every == 500 and MaxRegressionConfig().valid_every == 0
    assert len(paper.seeds) >= 3
    assert paper.rows == [row.value for row in Row] == list(PAPER_MAE)


def test_quick_preset_is_the_default() -> None:
    assert MaxRegressionConfig(**PRESETS["quick"]) == MaxRegressionConfig()
    assert MaxRegressionConfig().steps < 20_000


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"preset": "huge"}, ValueError, "preset"),
        ({"rows": ["rff-median"]}, ValueError, "rows must be one of 'rff-mean'"),
        ({"rows": []}, ValueError, "rows must hold at least one value"),
        ({"seeds": []}, ValueError, "seeds must hold at least one value"),
        ({"steps": 0}, ValueError, "steps must be"),
        ({"width": 30}, ValueError, r"width must be divisible by 4 \(attention heads\); got 30"),
        ({"lr": 0.0}, ValueError, "lr must be > 0"),
        ({"lr_schedule": "onecycle"}, ValueError, "lr_schedule must be one of"),
        ({"max_size": 1.5}, TypeError, "max_size must be an int"),
        (
            {"workers": 2, "engine": {"devices": 2}},
            ValueError,
            "workers must be 1 with DDP; got workers=2",
        ),
    ],
)
def test_bad_settings_name_the_setting(
    change: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        MaxRegressionConfig(**change)


def test_rows_are_resolved_and_deduplicated() -> None:
    config = MaxRegressionConfig(rows=["SAB-PMA", "rff-max", "sab-pma"])
    assert config.rows == ["sab-pma", "rff-max"]
