"""The driver: jobs, the metrics and the files of a tiny run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")

from deepsets.experiments.max_regression.config import PAPER_MAE, MaxRegressionConfig
from deepsets.experiments.max_regression.run import _cost, _jobs, summary


def test_one_job_per_row_and_seed_sab_first() -> None:
    config = MaxRegressionConfig(rows=["rff-max", "sab-pma"], seeds=[0, 1], steps=10)
    jobs = _jobs(config)
    assert [j["name"] for j in jobs] == [
        "rff-max-seed0", "rff-max-seed1", "sab-pma-seed0", "sab-pma-seed1",
    ]  # fmt: skip
    assert _cost(jobs[2]) > _cost(jobs[0])  # the slower SAB + PMA starts first


def test_metrics_of_a_tiny_run(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_run
    assert set(metrics) >= {"rows", "ordering", "paper_ordering", "targets", "runs", "seconds"}
    assert list(metrics["rows"]) == list(PAPER_MAE)
    assert len(metrics["runs"]) == 8  # 4 rows x 2 seeds
    for name, row in metrics["rows"].items():
        mine = [r["mae"] for r in metrics["runs"] if r["row"] == name]
        assert row["seeds"] == [0, 1] and row["mae_per_seed"] == mine
        assert row["mae_mean"] == pytest.approx(sum(mine) / 2)
        assert (row["paper_mean"], row["paper_std"]) == PAPER_MAE[name]
        assert row["within_paper"] == (row["mae_mean"] <= row["paper_bound"])
        assert row["best_steps"] == [r["best_step"] for r in metrics["runs"] if r["row"] == name]
    for run in metrics["runs"]:  # scored at steps 2 and 4; the best of the two is tested
        assert run["best_step"] in (2, 4) and run["valid_mae"] >= 0
        if run["best_step"] == 4:
            assert run["mae"] == run["mae_final"]
    assert metrics["paper_ordering"] == ["rff-max", "sab-pma", "rff-sum", "rff-mean"]
    assert set(metrics["targets"]) == {"all_rows_within_paper", "max_pool_mae_at_most_0.2"}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["rows"].keys() == metrics["rows"].keys()
    assert json.loads((out / "config.json").read_text())["steps"] == 4
    assert (out / "figures" / "mae.png").is_file() and (out / "figures" / "mae.svg").is_file()


def test_report_sections(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = tiny_run
    report = (out / "report.md").read_text()
    for section in ("## Results", "## MAE by set size", "## Where we differ", "## Cost"):
        assert section in report
    assert "2.133 ± 0.19" in report and "0.2085 ± 0.0127" in report  # the paper's rows
    assert "Shorter training" in report  # 4 steps, not 20,000
    assert "![test MAE per model](figures/mae.png)" in report


def test_summary_lists_every_row(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_run
    text = summary(metrics, MaxRegressionConfig(out=str(out)))
    assert text is not None and text.count("MAE") == 4 and "report.md" in text
