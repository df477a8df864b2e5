"""The figure: drawn from a run's metrics, PNG and SVG, one bar pair per row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")

from deepsets.experiments.max_regression.figures import draw_figure


def test_figure_files(tiny_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _, metrics = tiny_run
    assert draw_figure(metrics, tmp_path / "figures") == "figures/mae.png"
    svg = (tmp_path / "figures" / "mae.svg").read_text()
    assert (tmp_path / "figures" / "mae.png").stat().st_size > 1000
    for row in metrics["rows"].values():  # every row is labelled on the axis
        assert row["label"].split(" (")[0] in svg
