"""report.md: the headline table, the baselines, the blog post's claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deepsets.experiments.power_spectrum.report import size_sweep_ratio


def test_size_sweep_ratio() -> None:
    sweep = {"32": 9.0, "128": 1.0, "256": 1.1, "4096": 1.15, "8192": 5.0}
    assert size_sweep_ratio(sweep, 128) == pytest.approx(1.15)
    assert size_sweep_ratio({"64": 2.0, "128": 1.0, "512": 0.5}, 64) == pytest.approx(0.5)


def test_report_of_a_tiny_run(tiny_study: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_study
    report = (out / "report.md").read_text()
    assert report.startswith("# Power spectrum of random periodic functions")
    assert f"{metrics['test_mse']:.3f}" in report
    assert f"{metrics['prior_mse']:.3f}" in report
    # An untrained network loses to both baselines, and the report says so plainly.
    assert "**The prior wins**" in report
    assert "**The least-squares baseline wins, by far**" in report
    assert "20 vs 2,099,200" in report
    assert "| 1 | 4 | 2 |" in report  # grid cell: depth 1, width 4, two seeds


def test_report_states_each_regimes_winner(tiny_study: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_study
    report = (out / "report.md").read_text()
    assert "## Reproduction: the blog post's network" in report
    assert "## The Bayes floor and the four regimes" in report
    assert "**These are the `quick` preset's numbers**" in report
    assert report.index("## Reproduction") < report.index("## The Bayes floor")
    for name, regime in metrics["regimes"].items():
        assert f"### {name} (k_max {regime['k_max']}" in report
        assert f"- **{name}**: the winner is the " in report
    assert "Bayes floor (posterior mean of log p_k)" in report and "regret" in report
    for line in report.splitlines():  # every table row has the header's number of cells
        if line.startswith("| estimator | test MSE | − Bayes"):
            cells = line.count("|")
        elif line.startswith("| ") and "chosen on validation" in line:
            assert line.count("|") == cells, line
    assert "### MSE against N (figure 6)" in report and "no full-rank fit" in report
    assert "seed document" not in report and "the seed" not in report
