"""The driver: jobs, the metrics of a tiny run, workers."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")

from deepsets.experiments.power_spectrum.baselines import PRIOR_MSE
from deepsets.experiments.power_spectrum.config import PowerSpectrumConfig
from deepsets.experiments.power_spectrum.model import dense_parameter_count
from deepsets.experiments.power_spectrum.run import _dense_count, _jobs, run_power_spectrum


def test_dense_count_of_the_main_model() -> None:
    config = PowerSpectrumConfig(set_size=8, depth=2, width=5)
    assert _dense_count(config, 3) == dense_parameter_count(8, [3, 5, 5], k_fin=4)


def test_jobs_reuse_main_models_in_the_grid() -> None:
    config = PowerSpectrumConfig(
        seeds=[0, 1], depth=3, width=64, steps=100, grid_depths=[1, 3], grid_widths=[64],
        grid_steps=100, grid_seeds=[0], other_encoding_seeds=1,
    )  # fmt: skip
    jobs = _jobs(config)
    names = [job["name"] for job in jobs]
    assert names[:3] == ["main-circle-seed0", "main-circle-seed1", "main-raw-seed0"]
    reused = [job["name"] for job in jobs if job.get("reuse")]
    assert reused == ["grid-circle-d3-w64-seed0"]
    noise = next(job for job in jobs if job["kind"] == "noise")
    assert noise["k_max"] == 64
    kinds = [job["kind"] for job in jobs]
    assert kinds.count("regime-reference") == 4 and kinds.count("regime-net") == 8
    assert kinds[-1] == "floor-sweep"  # the regimes follow the reproduction


def test_metrics_of_a_tiny_run(tiny_study: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_study
    assert metrics["prior_mse_theory"] == pytest.approx(math.pi**2 / 6) == PRIOR_MSE
    assert set(metrics["encodings"]) == {"circle", "raw"}
    assert metrics["encodings"]["circle"]["seeds"] == [0, 1]
    assert metrics["encodings"]["raw"]["seeds"] == [0]  # other_encoding_seeds = 1
    runs = {r["name"]: r for r in metrics["runs"]}
    mean = sum(runs[f"main-circle-seed{s}"]["test_mse"] for s in (0, 1)) / 2
    assert metrics["test_mse"] == pytest.approx(mean)
    assert metrics["per_k_mse"] == pytest.approx(metrics["encodings"]["circle"]["per_k_mse"])
    assert list(metrics["size_sweep"]) == ["8", "16", "64"]
    assert metrics["lstsq_mse"] < 1e-6 < metrics["prior_mse"]
    assert [(c["depth"], c["width"]) for c in metrics["grid"]] == [(1, 4), (1, 4), (2, 4), (2, 4)]
    assert metrics["seconds"] > 0
    assert (out / "metrics.json").exists() and (out / "config.json").exists()


@pytest.mark.slow
def test_two_workers_give_the_same_numbers_as_one(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Also: with workers, one bar over the models, no interleaved per-step worker bars."""
    settings: dict[str, Any] = {
        "seeds": [0], "encodings": ["circle", "raw"], "depth": 1, "width": 4, "steps": 3,
        "batch_size": 4, "set_size": 8, "grid_depths": [1], "grid_widths": [4],
        "grid_seeds": [0, 1],
        "grid_steps": 3, "noise_steps": 0, "test_sets": 16, "sweep_sets": 8,
        "sweep_sizes": [8], "figures": False, "regimes": [],
        "engine": {"accelerator": "cpu", "progress": False, "logger": "none"},
    }  # fmt: skip
    one = run_power_spectrum({**settings, "out": str(tmp_path / "one"), "workers": 1})
    capfd.readouterr()
    shown = {**settings["engine"], "progress": True}
    two = run_power_spectrum(
        {**settings, "out": str(tmp_path / "two"), "workers": 2, "engine": shown}
    )
    output = capfd.readouterr()
    printed = output.out + output.err
    # one bar over the steps of all models, complete: 3 models x 3 steps
    assert re.search(r"3 models in 2 processes: 100%.* 9/9 \[.*3/3 models done", printed)
    assert "loss=" not in printed and "Training" not in printed  # no worker step bars
    assert one["per_k_mse"] == two["per_k_mse"]
    assert one["encodings"]["raw"]["test_mse"] == two["encodings"]["raw"]["test_mse"]


def test_regime_metrics_of_a_tiny_run(tiny_study: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_study
    regimes = metrics["regimes"]
    assert list(regimes) == ["blog", "noisy", "underdetermined", "aliasing"]
    for name, regime in regimes.items():
        estimators = regime["estimators"]
        assert set(estimators) == {"prior", "lstsq", "ridge", "bayes", "generic", "structured"}
        prior, bayes = estimators["prior"]["mse"], estimators["bayes"]["mse"]
        assert estimators["prior"]["regret"] == pytest.approx(1.0)
        assert estimators["bayes"]["regret"] == 0.0 and bayes < prior
        for entry in estimators.values():
            assert len(entry["per_k_mse"]) == regime["k_fin"]
            assert entry["mse"] == pytest.approx(sum(entry["per_k_mse"]) / regime["k_fin"])
            assert "set_errors" not in entry
            expected = (entry["mse"] - bayes) / (prior - bayes)
            assert entry["regret"] == pytest.approx(expected)
        for design in ("generic", "structured"):
            entry = estimators[design]
            assert [s["seed"] for s in entry["seeds"]] == [0]
            assert entry["cpu_seconds"] > 0 and entry["steps"] == 3
        contenders = {k: v["mse"] for k, v in estimators.items() if k != "bayes"}
        assert regime["winner"] == min(contenders, key=contenders.__getitem__)
        assert regime["test_sets"] == 16 and regime["name"] == name
    sweep = metrics["floor_sweep"]
    assert sweep["sizes"] == [16, 64]
    assert sweep["network_name"] == "structured-underdetermined-seed0"
    assert sweep["lstsq"][0] is None  # N = 16 < 2 K_fin + 1: no full-rank fit
    assert all(b <= p for b, p in zip(sweep["bayes"], sweep["prior"], strict=True))
    runs = {r["name"] for r in metrics["runs"]}
    assert "generic-blog-seed0" not in runs  # the reproduction's runs stay as they were
    assert (out / "checkpoints" / "structured-aliasing-seed0" / "last.ckpt").exists()


def test_regime_networks_resume_bit_for_bit(tmp_path: Path) -> None:
    """The regime networks train on the engine: a run stopped after 3 of 4 steps (its last
    checkpoint at step 2) and resumed ends with the weights of an uninterrupted run."""
    import torch
    from lightning.pytorch import Callback

    from deepsets.experiments.power_spectrum.config import PowerSpectrumConfig
    from deepsets.experiments.power_spectrum.regimes import execute_regime_job, regime_jobs

    class Stop(Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if trainer.global_step >= 3:  # after the checkpoint of step 2
                raise RuntimeError("stopped")

    engine = {"accelerator": "cpu", "progress": False, "logger": "none", "checkpoint_every": 2}
    budgets = {"steps": 4, "batch_size": 4, "hidden": [8], "rho_hidden": [8]}
    for design in ("structured", "generic"):
        weights = []
        for out, stops in (
            (tmp_path / f"a-{design}", [False]),
            (tmp_path / f"b-{design}", [True, False]),
        ):
            for stop in stops:
                config = PowerSpectrumConfig(
                    out=str(out), resume=True, engine=engine, regimes=["noisy"],
                    designs=[design], regime_test_sets=8, **{design: budgets},
                )  # fmt: skip
                job = next(j for j in regime_jobs(config) if j["kind"] == "regime-net")
                if stop:
                    with pytest.raises(RuntimeError, match="stopped"):
                        execute_regime_job(config, job, [Stop()])
                    continue
                info = execute_regime_job(config, job)
            assert info["resumed"] == stops[0]
            weights.append(torch.load(info["checkpoint"], weights_only=True)["state_dict"])
        straight, resumed = weights
        assert straight.keys() == resumed.keys()
        assert all(torch.equal(straight[k], resumed[k]) for k in straight)
