"""The driver: a tiny end-to-end run, its files, the loss and the schedule, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")

import torch

from deepsets.experiments import get_experiment
from deepsets.experiments.clustering.config import ClusteringConfig
from deepsets.experiments.clustering.data import make_stream_sampler, set_log_likelihood
from deepsets.experiments.clustering.model import build_model, parse_output
from deepsets.experiments.clustering.run import MixtureModule, run_clustering, summary

from .conftest import TINY


def test_tiny_run_writes_metrics_report_and_figures(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_run
    for key in ("oracle_ll", "oracle_ll_se", "one_gaussian_ll", "rows", "runs", "paper"):
        assert key in metrics
    assert set(metrics["rows"]) == {"rff", "rffp_mean", "isab_pma"}
    assert len(metrics["runs"]) == 6
    for name, row in metrics["rows"].items():
        mine = [r["test_ll"] for r in metrics["runs"] if r["architecture"] == name]
        assert row["mean"] == pytest.approx(sum(mine) / 2)
        assert row["seeds"] == [0, 1]
    assert metrics["oracle_ll"] > metrics["one_gaussian_ll"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["rows"] == metrics["rows"]
    assert json.loads((out / "config.json").read_text())["steps"] == TINY["steps"]
    report = (out / "report.md").read_text()
    for heading in ("## Results", "## Ordering", "## Where we differ", "## Cost"):
        assert heading in report
    for png in metrics["figures"].values():
        assert (out / png).is_file() and (out / png).with_suffix(".svg").is_file()
    printed = summary(metrics, ClusteringConfig(**TINY))
    assert printed is not None and "oracle" in printed and "±" in printed  # two seeds


def test_resume_does_not_train_again(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_run
    again = run_clustering(ClusteringConfig(out=str(out), resume=True, **{**TINY, "seeds": [0]}))
    assert all(r["resumed"] and r["steps_trained"] == 0 for r in again["runs"])
    assert all(r["steps_trained"] == TINY["steps"] for r in metrics["runs"])
    before = {r["name"]: r["test_ll"] for r in metrics["runs"]}
    for run in again["runs"]:
        assert run["test_ll"] == pytest.approx(before[run["name"]], abs=1e-9)


def test_loss_is_the_negative_log_likelihood_per_point() -> None:
    torch.manual_seed(0)
    model = build_model("rff", width=8)
    module = MixtureModule(model, lr=1e-3, lr_drop_step=None, max_steps=1)
    x, target = make_stream_sampler(batch_size=3, seed=0, min_points=4, max_points=9)(
        0, 0, torch.device("cpu")
    )
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    loss = module.training_step((x, target), 0)
    expected = -set_log_likelihood(x, None, parse_output(model(x))).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert module.loss_name == "nll"


def test_learning_rate_drops_tenfold_after_the_drop_step() -> None:
    model = build_model("rff", width=8)
    module = MixtureModule(model, lr=1e-3, lr_drop_step=3, max_steps=5)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4, 1e-4])
    constant = MixtureModule(model, lr=1e-3, lr_drop_step=None, max_steps=5)
    assert isinstance(constant.configure_optimizers(), torch.optim.Adam)


def test_gradients_are_clipped_to_clip_norm_before_every_step(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import Callback

    from deepsets.training import EngineSettings, fit_stream

    norms: list[float] = []

    class RecordStepNorms(Callback):
        """The gradient norm Adam stepped with (Lightning runs the closure inside step)."""

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            def record(optimizer: Any, *args: Any) -> None:
                grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
                norms.append(
                    float(
                        torch.linalg.vector_norm(
                            torch.stack(
                                [torch.linalg.vector_norm(g) for g in grads if g is not None]
                            )
                        )
                    )
                )

            trainer.optimizers[0].register_step_post_hook(record)

    for clip_norm in (1e-3, None):
        torch.manual_seed(0)
        module = MixtureModule(
            build_model("rff", width=8),
            lr=1e-3,
            lr_drop_step=None,
            clip_norm=clip_norm,
            max_steps=3,
        )
        sample = make_stream_sampler(batch_size=3, seed=0, min_points=4, max_points=9)
        fit_stream(
            module,
            sample,
            max_steps=3,
            out_dir=tmp_path / str(clip_norm),
            name="clip",
            settings=EngineSettings(accelerator="cpu", progress=False, logger="none"),
            callbacks=[RecordStepNorms()],
        )
    clipped, free = norms[:3], norms[3:]
    assert len(free) == 3 and max(clipped) == pytest.approx(1e-3, rel=1e-3)
    assert min(free) > 1e-2  # unclipped gradients are far larger: the clip did something


def test_validation_keeps_the_best_weights_and_reports_the_last_steps(tmp_path: Path) -> None:
    values = {**TINY, "seeds": [0], "architectures": ["rff"], "valid_every": 2, "valid_sets": 5}
    metrics = run_clustering(ClusteringConfig(out=str(tmp_path), **values))
    (run,) = metrics["runs"]
    assert run["best_step"] in (2, 4) and "valid_ll" in run
    assert {"test_ll", "test_ll_last_step"} <= set(run)
    if run["best_step"] == 4:  # the last step's weights are the best: the same score
        assert run["test_ll"] == pytest.approx(run["test_ll_last_step"], abs=1e-9)


def test_validation_turned_on_at_resume_scores_the_last_step(tmp_path: Path) -> None:
    """A finished run trained without scoring has no best weights: its last step's count."""
    values = {**TINY, "seeds": [0], "architectures": ["rff"]}
    first = run_clustering(ClusteringConfig(out=str(tmp_path), **values))
    again = run_clustering(
        ClusteringConfig(out=str(tmp_path), resume=True, valid_every=2, valid_sets=5, **values)
    )
    (before,), (after,) = first["runs"], again["runs"]
    assert "best_step" not in after and after["steps_trained"] == 0
    assert after["test_ll"] == pytest.approx(before["test_ll"], abs=1e-9)


def test_registry_entry_and_command_line() -> None:
    from deepsets.cli import build_parser

    entry = get_experiment("clustering")
    assert entry.config_class() is ClusteringConfig
    assert set(entry.preset_table()) == {"quick", "paper"}
    args = build_parser().parse_args(
        ["clustering", "--preset", "paper", "--out", "runs/x", "--steps", "60000"]
    )
    assert args.preset == "paper" and args.steps == 60000


def test_a_run_stopped_and_resumed_ends_as_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after step 3 (last checkpoint at step 2) and resumed, with clipping and the
    best-validation guard on: the same last weights and the same test scores as a straight run
    (the paper preset's runs were resumed this way)."""
    from lightning.pytorch import Callback

    from deepsets.experiments.clustering import run as run_module

    class Stop(Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if trainer.global_step >= 3:
                raise RuntimeError("stopped")

    values = {
        **TINY,
        "seeds": [0],
        "architectures": ["rffp_mean"],
        "steps": 6,
        "lr_drop_step": 3,
        "valid_every": 2,
        "valid_sets": 5,
        "clip_norm": 0.5,
        "figures": False,
        "engine": {**TINY["engine"], "checkpoint_every": 2},
    }
    straight = run_clustering(ClusteringConfig(out=str(tmp_path / "a"), **values))
    monkeypatch.setattr(run_module, "step_callbacks", lambda: [Stop()])
    with pytest.raises(RuntimeError, match="stopped"):
        run_clustering(ClusteringConfig(out=str(tmp_path / "b"), **values))
    monkeypatch.undo()
    resumed = run_clustering(ClusteringConfig(out=str(tmp_path / "b"), resume=True, **values))
    (a,), (b,) = straight["runs"], resumed["runs"]
    assert b["resumed"] and b["steps_trained"] == 4
    for key in ("test_ll", "test_ll_last_step", "best_step", "valid_ll"):
        assert a[key] == b[key], key
    weights = [
        torch.load(out / "checkpoints" / "rffp_mean-seed0" / "last.ckpt", weights_only=True)
        for out in (tmp_path / "a", tmp_path / "b")
    ]
    first, second = (w["state_dict"] for w in weights)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
