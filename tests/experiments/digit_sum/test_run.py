"""The digit-sum driver: a tiny run, resume, the command line, the paper's target."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("lightning")

from deepsets.experiments.digit_sum.config import DigitSumConfig
from deepsets.experiments.digit_sum.data import VARIANTS
from deepsets.experiments.digit_sum.run import run_digit_sum

from .test_config import _parser

TINY = {
    "steps": 30,
    "test_sets": 20,
    "max_test_size": 12,
    "batch_size": 32,
    "engine": {"accelerator": "cpu", "devices": 1, "progress": False, "checkpoint_every": 10},
}


def test_tiny_run_writes_every_output_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    metrics = run_digit_sum({**TINY, "out": str(out)})
    for name in ("report.md", "metrics.json", "config.json", "figures/accuracy.png"):
        assert (out / name).is_file(), name
    for variant in VARIANTS:
        assert (out / "checkpoints" / variant / "last.ckpt").is_file()
        assert (out / "logs" / variant / "metrics.csv").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["variants"].keys() == set(VARIANTS)
    for result in saved["variants"].values():
        assert list(result["accuracy"]) == [str(n) for n in range(1, 13)]
        assert all(0.0 <= a <= 1.0 for a in result["accuracy"].values())
        assert result["min_accuracy"] == min(result["accuracy"].values())
        assert result["global_step"] == 30
    seen = saved["variants"]["image"]["train_images_accuracy"]
    assert list(seen) == ["1", "10", "12"]
    assert saved["variants"]["image"]["train_images"] == 1198
    config = json.loads((out / "config.json").read_text())
    assert DigitSumConfig(**config) == DigitSumConfig(**{**TINY, "out": str(out)})
    report = (out / "report.md").read_text()
    assert "| 12 |" in report and "image" in report and "integer" in report

    again = run_digit_sum({**TINY, "out": str(out), "resume": True})
    for variant in VARIANTS:
        assert again["variants"][variant]["resumed"]
        assert again["variants"][variant]["global_step"] == 30
        assert again["variants"][variant]["accuracy"] == metrics["variants"][variant]["accuracy"]


def test_command_line_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        [
            *("digit-sum", "--variant", "integer", "--out", str(tmp_path), "--steps", "5"),
            *("--test-sets", "5", "--max-test-size", "3", "--no-progress", "--logger", "none"),
        ]
    )
    assert args.func(args) == 0
    assert "integer: accuracy at size 1" in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics.json").read_text())["max_test_size"] == 3


def test_integer_digits_reach_95_percent_at_every_size_up_to_100(tmp_path: Path) -> None:
    """The issue's target, with the default recipe (fewer test sets to stay fast)."""
    metrics = run_digit_sum(
        {
            "variants": ["integer"],
            "out": str(tmp_path),
            "test_sets": 100,
            "engine": {"accelerator": "cpu", "progress": False, "logger": "none"},
        }
    )
    result = metrics["variants"]["integer"]
    assert result["min_accuracy"] >= 0.95, result["accuracy"]
    assert list(result["accuracy"]) == [str(n) for n in range(1, 101)]
    assert asdict(DigitSumConfig())["max_test_size"] == 100


def test_command_line_reports_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["digit-sum", "--steps", "0"])
    assert args.func(args) == 2
    assert "steps must be a positive int or None; got 0" in capsys.readouterr().err
    args = _parser().parse_args(["digit-sum", "--variant", "roman"])
    assert args.func(args) == 2
    assert "variants must be one of 'integer', 'image'; got 'roman'" in capsys.readouterr().err
