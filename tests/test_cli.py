"""The ``deepsets`` command line: end to end on a tiny study, config files, bad flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("matplotlib")

from deepsets import __version__
from deepsets.cli import MALLOC_SETTINGS, build_parser, main
from deepsets.experiments import EXPERIMENTS

# A study that trains for seconds: one seed, two encodings, the 1×1 grid reuses the main
# model, a 2-step noise model.
TINY = [
    "--seeds", "0",
    "--encodings", "circle", "raw",
    "--depth", "1", "--width", "4", "--steps", "6", "--batch-size", "4", "--set-size", "16",
    "--grid-depths", "1", "--grid-widths", "4", "--grid-steps", "6", "--grid-seeds", "0",
    "--noise-steps", "2", "--noise-depth", "1", "--noise-width", "4", "--noise-sets", "8",
    "--noise-test-k-max", "8", "16",
    "--test-sets", "32", "--sweep-sets", "16", "--sweep-sizes", "8", "128",
    "--workers", "1", "--accelerator", "cpu", "--no-progress", "--logger", "none",
    # the regime part, small: one regime, one design (its budget is the quick preset's)
    "--regimes", "noisy", "--designs", "structured", "--regime-test-sets", "16",
    "--valid-sets", "16", "--ridges", "1",
]  # fmt: skip

REQUIRED_METRICS = {
    "test_mse",
    "prior_mse",
    "lstsq_mse",
    "per_k_mse",
    "size_sweep",
    "seconds",
    "encodings",
    "parameters",
    "grid",
    "noise",
}


def test_power_spectrum_end_to_end_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["power-spectrum", "--preset", "quick", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "test_mse" in printed and "report.md" in printed

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= REQUIRED_METRICS
    assert len(metrics["per_k_mse"]) == 4
    assert set(metrics["size_sweep"]) == {"8", "16", "128"}  # the training N is included
    assert set(metrics["encodings"]) == {"circle", "raw"}
    assert metrics["parameters"]["seed_example"]["equivariant"] == 20
    assert metrics["parameters"]["seed_example"]["dense"] == 2_099_200
    assert 0.8 < metrics["prior_mse"] < 2.6  # π²/6 on 32 test sets
    assert metrics["lstsq_mse"] < 1e-6  # noiseless k_max = 4 data, K = 4 fit
    assert len(metrics["grid"]) == 1 and set(metrics["noise"]["tests"]) == {"8", "16"}

    report = (out / "report.md").read_text()
    headings = (
        "## Reproduction: the blog post's network",
        "## Where each estimator wins",
        "side by side",
        "## Figures",
        "## The Bayes floor and the four regimes",
        "### noisy (k_max 4, K_fin 4, N 32, σ 0.3)",
    )
    for heading in headings:
        assert heading in report
    assert set(metrics["regimes"]) == {"noisy"} and metrics["floor_sweep"] is None
    assert set(metrics["regimes"]["noisy"]["estimators"]) == {
        "prior", "lstsq", "ridge", "bayes", "structured"
    }  # fmt: skip
    assert "least-squares baseline wins" in report  # said plainly
    assert "(1 seed)" in report and "± 0.000" not in report  # no spread claimed from one seed
    for number in range(1, 6):
        pngs = list((out / "figures").glob(f"fig{number}-*.png"))
        assert len(pngs) == 1 and pngs[0].with_suffix(".svg").exists()
        assert f"figures/{pngs[0].name}" in report
    for name in ("main-circle-seed0", "main-raw-seed0", "noise-circle-kmax64-seed0"):
        assert (out / "checkpoints" / name / "last.ckpt").exists()

    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "quick" and config["steps"] == 6 and config["width"] == 4

    # --resume with the written config: nothing is trained again, same numbers.
    assert main(["power-spectrum", "--config", str(out / "config.json"), "--resume"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["test_mse"] == metrics["test_mse"]
    assert again["per_k_mse"] == metrics["per_k_mse"]
    assert all(run["resumed"] for run in again["runs"])


def test_config_file_round_trip_json_and_toml(tmp_path: Path) -> None:
    from deepsets.experiments.power_spectrum.config import config_from_args

    parser = build_parser()
    args = parser.parse_args(["power-spectrum", "--out", str(tmp_path), *TINY])
    config = config_from_args(args)
    as_json = tmp_path / "config.json"
    as_json.write_text(json.dumps(config.to_dict()))
    again = config_from_args(parser.parse_args(["power-spectrum", "--config", str(as_json)]))
    assert again == config

    as_toml = tmp_path / "settings.toml"
    as_toml.write_text('preset = "quick"\nwidth = 12\nseeds = [3, 4]\nencodings = ["raw"]\n')
    from_toml = config_from_args(parser.parse_args(["power-spectrum", "--config", str(as_toml)]))
    assert (from_toml.width, from_toml.seeds, from_toml.encodings) == (12, [3, 4], ["raw"])
    # Flags beat the file, the file beats the preset.
    flagged = parser.parse_args(["power-spectrum", "--config", str(as_toml), "--width", "5"])
    assert config_from_args(flagged).width == 5
    paper = config_from_args(parser.parse_args(["power-spectrum", "--preset", "paper"]))
    assert (paper.set_size, paper.batch_size, paper.test_sets) == (512, 256, 1024)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--encodings", "polar"], "encodings must be one of 'raw', 'circle'; got 'polar'"),
        (["--k-fin", "5"], "k_fin must be <= k_max=4"),
        (["--steps", "0"], "steps must be a positive int; got 0"),
        (["--lr-schedule", "step"], "lr_schedule must be one of"),
        (["--lstsq-k", "2"], "lstsq_k must be >= k_fin=4"),
        (["--accelerator", "abacus"], "accelerator must be one of"),
    ],
)
def test_bad_settings_exit_with_status_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["power-spectrum", "--out", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_bad_config_file_entries_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"widht": 3}))
    assert main(["power-spectrum", "--config", str(path)]) == 2
    assert "unknown entries ['widht']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["power-spectrum", "--preset", "huge"],
        ["power-spectrum", "--width", "wide"],
        ["power-spectrum", "--no-such-flag"],
        ["no-such-command"],
        [],
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: deepsets" in capsys.readouterr().err


def test_help_lists_every_experiment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for experiment in EXPERIMENTS:
        assert experiment.name in text and experiment.help[:30] in text.replace("\n", " ")


@pytest.mark.slow
def test_python_dash_m_runs_the_cli() -> None:
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_SETTINGS}
    result = subprocess.run(
        [sys.executable, "-m", "deepsets", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"deepsets {__version__}"
