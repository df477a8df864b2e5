"""fit_stream: learning, exact resumption (crash and SIGKILL), DDP on two CPU processes,
logging, safe resume, settings validation and the shared command-line flags."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.testing import assert_close

from deepsets import DeepSetsInvariant
from deepsets.training import (
    EngineSettings,
    InterruptAt,
    KeepBest,
    SetModelModule,
    StepReporter,
    add_engine_arguments,
    engine_settings_from_args,
    fit_stream,
    load_checkpoint,
    load_model_weights,
    save_checkpoint_atomic,
)

WORKER = Path(__file__).with_name("engine_worker.py")
_spec = importlib.util.spec_from_file_location("deepsets_engine_worker", WORKER)
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

QUIET = {"accelerator": "cpu", "devices": 1, "logger": "none", "progress": False}


class Recorder:
    """Wraps a sampler and records the (step, rank) pairs it is asked for."""

    def __init__(self, sample: Any) -> None:
        self.sample = sample
        self.calls: list[tuple[int, int]] = []

    def __call__(self, step: int, rank: int, device: torch.device) -> Any:
        self.calls.append((step, rank))
        return self.sample(step, rank, device)


class Worker:
    """``engine_worker.py MODE OUT STEPS`` running in the background."""

    def __init__(self, mode: str, out: Path, steps: int) -> None:
        self.out, self.steps = out, steps
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MASTER_", "LOCAL_"))}
        env.update({"OMP_NUM_THREADS": "1"})
        self.start = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), mode, str(out), str(steps)],
            cwd=out,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self, expect: int) -> float:
        """Wait for the process; check its exit status; return its wall time in seconds."""
        _, err = self.process.communicate(timeout=300)
        assert self.process.returncode == expect, err[-3000:]
        return time.perf_counter() - self.start


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Worker]]:
    """Start the DDP run and the run that gets killed at once, so they overlap."""
    started = {}
    for mode, steps in (("ddp", 8), ("kill", 20)):
        out = tmp_path_factory.mktemp(mode)
        started[mode] = Worker(mode, out, steps)
    yield started
    for running in started.values():
        if running.process.poll() is None:
            running.process.kill()
            running.process.communicate()


def _fit(out: Path, steps: int, *, schedule: str = "cosine", **kwargs: Any) -> Any:
    module = worker.toy_module(steps, schedule)
    sample = Recorder(worker.toy_sample)
    result = fit_stream(
        module,
        sample,
        max_steps=steps,
        out_dir=out,
        name="toy",
        settings=EngineSettings(**QUIET, checkpoint_every=5),
        **kwargs,
    )
    return module, sample, result


def test_fit_stream_learns_a_linear_set_function(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DeepSetsInvariant(3, [], [], 2)  # sum pooling + linear: can be exact
    module = SetModelModule(model, lr=3e-2, lr_schedule="cosine", max_steps=150)
    x, y = worker.toy_sample(10_000, 0, torch.device("cpu"))
    before = torch.nn.functional.mse_loss(model(x), y).item()
    result = fit_stream(
        module,
        worker.toy_sample,
        max_steps=150,
        out_dir=tmp_path,
        name="toy",
        settings=EngineSettings(**QUIET),
    )
    after = torch.nn.functional.mse_loss(model(x), y).item()
    assert result.global_step == 150
    assert result.is_global_zero
    assert after < 0.01 * before
    # The final state is in last.ckpt even though checkpoint_every (1000) > max_steps.
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint["global_step"] == 150
    fresh = DeepSetsInvariant(3, [], [], 2)
    load_model_weights(fresh, result.checkpoint)
    assert_close(fresh(x), model(x))


def test_step_reporter_counts_every_step_once(tmp_path: Path) -> None:
    reports: list[int] = []
    _fit(tmp_path / "full", 45, callbacks=[StepReporter(reports.append, every=20)])
    assert reports == [20, 20, 5]
    with pytest.raises(RuntimeError, match="simulated crash at step 12"):
        _fit(tmp_path / "cut", 30, callbacks=[InterruptAt(12)])
    resumed: list[int] = []
    _fit(tmp_path / "cut", 30, resume=True, callbacks=[StepReporter(resumed.append, every=20)])
    assert resumed[0] == 10  # the steps of the checkpoint it resumed from, first
    assert sum(resumed) == 30


@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_resume_after_crash_equals_uninterrupted_run(tmp_path: Path, schedule: str) -> None:
    steps = 30
    full, full_sample, _ = _fit(tmp_path / "full", steps, schedule=schedule)
    assert full_sample.calls == [(s, 0) for s in range(steps)]

    with pytest.raises(RuntimeError, match="simulated crash at step 12"):
        _fit(tmp_path / "cut", steps, schedule=schedule, callbacks=[InterruptAt(12)])
    # The crash came after step 12; the last checkpoint is the one of step 10.
    assert load_checkpoint(tmp_path / "cut/checkpoints/toy/last.ckpt")["global_step"] == 10

    resumed, resumed_sample, result = _fit(tmp_path / "cut", steps, schedule=schedule, resume=True)
    assert result.resumed_from == tmp_path / "cut/checkpoints/toy/last.ckpt"
    assert result.global_step == steps and result.start_step == 10
    # The resumed run draws exactly the batches the uninterrupted one drew after step 10.
    assert resumed_sample.calls == [(s, 0) for s in range(10, steps)]
    assert_close(resumed.state_dict(), full.state_dict(), rtol=0, atol=0)
    # The optimiser and schedule state match too.
    a = load_checkpoint(tmp_path / "full/checkpoints/toy/last.ckpt")
    b = load_checkpoint(tmp_path / "cut/checkpoints/toy/last.ckpt")
    assert_close(b["optimizer_states"], a["optimizer_states"], rtol=0, atol=0)
    assert b["lr_schedulers"] == a["lr_schedulers"]


class SnapshotScore:
    """The toy loss on a fixed batch, with a copy of the weights at every call."""

    def __init__(self) -> None:
        self.x, self.y = worker.toy_sample(10_000, 0, torch.device("cpu"))
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def __call__(self, model: torch.nn.Module) -> float:
        assert not model.training and not torch.is_grad_enabled()
        self.snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return torch.nn.functional.mse_loss(model(self.x), self.y).item()


def test_keep_best_keeps_the_best_scored_weights(tmp_path: Path) -> None:
    score = SnapshotScore()
    keep = KeepBest(score, every=4)
    module, _, _ = _fit(tmp_path, 30, schedule="constant", callbacks=[keep])
    assert [step for step, _ in keep.history] == [4, 8, 12, 16, 20, 24, 28, 30]
    values = [value for _, value in keep.history]
    best = min(range(len(values)), key=values.__getitem__)
    assert keep.best_score == values[best] and keep.best_step == keep.history[best][0]
    assert_close(keep.best_state, score.snapshots[best], rtol=0, atol=0)
    assert module.training  # scoring switched eval mode on and back off
    # the module keeps its final weights; best_state is a copy, not a view
    assert_close(module.model.state_dict(), score.snapshots[-1], rtol=0, atol=0)


def test_keep_best_never_takes_a_nan_score(tmp_path: Path) -> None:
    scores = iter([float("nan"), 2.0, float("nan"), 1.0, 3.0])
    keep = KeepBest(lambda model: next(scores), every=2)
    _fit(tmp_path, 10, callbacks=[keep])
    assert (keep.best_step, keep.best_score) == (8, 1.0)


def test_keep_best_survives_a_crash_and_resume(tmp_path: Path) -> None:
    # every=5 scores at the checkpoint's step 10 too: the score must be in that checkpoint
    full = KeepBest(SnapshotScore(), every=5)
    _fit(tmp_path / "full", 30, callbacks=[full])
    with pytest.raises(RuntimeError, match="simulated crash at step 12"):
        _fit(tmp_path / "cut", 30, callbacks=[KeepBest(SnapshotScore(), every=5), InterruptAt(12)])
    resumed = KeepBest(SnapshotScore(), every=5)
    _fit(tmp_path / "cut", 30, resume=True, callbacks=[resumed])
    assert resumed.history == full.history  # scores of steps 5 and 10 came from the checkpoint
    assert (resumed.best_step, resumed.best_score) == (full.best_step, full.best_score)
    assert_close(resumed.best_state, full.best_state, rtol=0, atol=0)


def test_keep_best_rejects_bad_settings() -> None:
    with pytest.raises(TypeError, match="score must be callable; got int"):
        KeepBest(3, every=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every must be a positive int; got 0"):
        KeepBest(float, every=0)  # type: ignore[arg-type]


def test_resume_of_a_finished_run_does_not_train_again(tmp_path: Path) -> None:
    first, _, _ = _fit(tmp_path, 10)
    again, sample, result = _fit(tmp_path, 10, resume=True)
    assert sample.calls == []
    assert result.global_step == 10
    assert_close(again.state_dict(), first.state_dict(), rtol=0, atol=0)


def test_resume_without_checkpoint_starts_from_scratch(tmp_path: Path) -> None:
    _, sample, result = _fit(tmp_path, 6, resume=True)
    assert result.resumed_from is None
    assert sample.calls[0] == (0, 0)


class _Payload:
    """Unpickling this runs ``Path.touch(marker)``: the kind of object a safe load refuses."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_resume_refuses_a_checkpoint_holding_pickled_objects(tmp_path: Path) -> None:
    _fit(tmp_path, 5)
    last = tmp_path / "checkpoints/toy/last.ckpt"
    checkpoint = load_checkpoint(last)
    marker = tmp_path / "code-ran"
    checkpoint["callbacks"] = {"evil": _Payload(marker)}
    save_checkpoint_atomic(checkpoint, last)
    # The payload does work when unpickled unsafely ...
    torch.load(last, weights_only=False)
    assert marker.exists()
    marker.unlink()
    # ... but Lightning's resume path (through AtomicCheckpointIO) refuses it.
    with pytest.raises(pickle.UnpicklingError, match="refusing to load checkpoint"):
        _fit(tmp_path, 10, resume=True)
    assert not marker.exists()


@pytest.mark.slow
def test_ddp_two_cpu_processes_average_gradients(
    workers: dict[str, Worker], tmp_path: Path
) -> None:
    """Two gloo processes, each drawing its own batch, end where one process would with
    both batches concatenated (DDP averages the gradients of equal-size batches)."""
    out, steps = workers["ddp"].out, workers["ddp"].steps
    seconds = workers["ddp"].wait(expect=0)
    rank0 = torch.load(out / "rank0.pt", weights_only=True)
    rank1 = torch.load(out / "rank1.pt", weights_only=True)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["step"] == rank1["step"] == steps
    assert_close(rank1["state"], rank0["state"], rtol=0, atol=0)

    def both_ranks(step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        a = worker.toy_sample(step, 0, device)
        b = worker.toy_sample(step, 1, device)
        return tuple(torch.cat(pair) for pair in zip(a, b, strict=True))

    module = worker.toy_module(steps)
    fit_stream(
        module,
        both_ranks,
        max_steps=steps,
        out_dir=tmp_path / "single",
        name="toy",
        settings=EngineSettings(**QUIET),
    )
    assert_close(rank0["state"], module.model.state_dict(), rtol=1e-4, atol=1e-5)
    # ... and differs from a run that sees only rank 0's batches.
    alone = worker.toy_module(steps)
    fit_stream(
        alone,
        worker.toy_sample,
        max_steps=steps,
        out_dir=tmp_path / "alone",
        name="toy",
        settings=EngineSettings(**QUIET),
    )
    with pytest.raises(AssertionError):
        assert_close(rank0["state"], alone.model.state_dict(), rtol=1e-4, atol=1e-5)
    assert load_checkpoint(out / "checkpoints/ddp/last.ckpt")["global_step"] == steps
    print(f"DDP 2-process run: {seconds:.1f} s")


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(
    workers: dict[str, Worker], tmp_path: Path
) -> None:
    """A process killed with SIGKILL (no clean-up at all) resumes to the same weights."""
    out, steps = workers["kill"].out, workers["kill"].steps
    seconds = workers["kill"].wait(expect=-signal.SIGKILL)
    last = out / "checkpoints/toy/last.ckpt"
    assert load_checkpoint(last)["global_step"] == 10  # killed after step 12
    assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"]  # no temp files
    resumed, sample, _ = _fit(out, steps, resume=True)
    assert sample.calls[0] == (10, 0)
    full, _, _ = _fit(tmp_path / "full", steps)
    assert_close(resumed.state_dict(), full.state_dict(), rtol=0, atol=0)
    print(f"killed run: {seconds:.1f} s")


def test_csv_logger_is_the_default(tmp_path: Path) -> None:
    module = worker.toy_module(20)
    fit_stream(
        module,
        worker.toy_sample,
        max_steps=20,
        out_dir=tmp_path,
        name="toy",
        settings=EngineSettings(accelerator="cpu", progress=False, log_every_n_steps=5),
    )
    with (tmp_path / "logs/toy/metrics.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["step"]) for r in rows] == [4, 9, 14, 19]
    assert all(float(r["loss"]) > 0 for r in rows)


def test_resumed_run_keeps_the_log_of_the_steps_before_its_checkpoint(tmp_path: Path) -> None:
    settings = EngineSettings(
        accelerator="cpu", progress=False, log_every_n_steps=1, checkpoint_every=5
    )

    def fit(**kwargs: Any) -> None:
        fit_stream(
            worker.toy_module(30),
            worker.toy_sample,
            max_steps=30,
            out_dir=tmp_path,
            name="toy",
            settings=settings,
            **kwargs,
        )

    with pytest.raises(RuntimeError, match="simulated crash at step 12"):
        fit(callbacks=[InterruptAt(12)])
    with (tmp_path / "logs/toy/metrics.csv").open() as stream:
        before = [int(r["step"]) for r in csv.DictReader(stream)]
    assert before[:10] == list(range(10)) and max(before) >= 10  # steps past the checkpoint
    fit(resume=True)  # from the checkpoint of step 10
    with (tmp_path / "logs/toy/metrics.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["step"]) for r in rows] == list(range(30))  # every step once, in order
    assert all(float(r["loss"]) > 0 for r in rows)


def test_tensorboard_logger(tmp_path: Path) -> None:
    has_tensorboard = any(
        importlib.util.find_spec(name) is not None for name in ("tensorboard", "tensorboardX")
    )
    settings = EngineSettings(accelerator="cpu", progress=False, logger="tensorboard")
    if not has_tensorboard:
        with pytest.raises(ImportError, match=r"pip install \"deepsets\[tensorboard\]\""):
            fit_stream(
                worker.toy_module(5),
                worker.toy_sample,
                max_steps=5,
                out_dir=tmp_path,
                name="toy",
                settings=settings,
            )
        return
    fit_stream(
        worker.toy_module(5),
        worker.toy_sample,
        max_steps=5,
        out_dir=tmp_path,
        name="toy",
        settings=settings,
    )
    assert list((tmp_path / "logs/toy").glob("events.out.tfevents.*"))


def test_progress_bar_shows_steps_and_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit_stream(
        worker.toy_module(20),
        worker.toy_sample,
        max_steps=20,
        out_dir=tmp_path,
        name="toybar",
        settings=EngineSettings(accelerator="cpu", logger="none", progress=True),
    )
    shown = capsys.readouterr()
    bar = shown.out + shown.err
    assert "toybar" in bar
    assert "20/20" in bar  # steps, not batches of an epoch
    assert "loss=" in bar
    assert "<00:00" in bar  # tqdm's ETA field
    assert "Training" not in bar and "0/?" not in bar  # no placeholder bar drawn first


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("accelerator", "quantum", r"accelerator must be one of .*'cpu'.*got 'quantum'"),
        ("strategy", "ddpp", r"strategy must be one of .*'ddp'.*got 'ddpp'"),
        ("devices", 0, r"devices must be 'auto' or a positive int; got 0"),
        ("devices", "two", r"devices must be 'auto' or a positive int; got 'two'"),
        ("num_nodes", 0, r"num_nodes must be a positive int; got 0"),
        ("logger", "wandb", r"logger must be one of 'csv', 'tensorboard', 'none'; got 'wandb'"),
        ("checkpoint_every", -5, r"checkpoint_every must be a positive int; got -5"),
    ],
)
def test_engine_settings_reject_bad_values(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineSettings(**{field: value})


def test_engine_settings_normalise() -> None:
    settings = EngineSettings(devices="2", logger="CSV")
    assert settings.devices == 2
    assert settings.logger == "csv"
    with pytest.raises(TypeError, match="progress must be a bool"):
        EngineSettings(progress="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="log_every_n_steps must be an int; got True"):
        EngineSettings(log_every_n_steps=True)


def test_fit_stream_rejects_bad_arguments(tmp_path: Path) -> None:
    module = worker.toy_module(5)
    with pytest.raises(ValueError, match="max_steps must be a positive int; got 0"):
        fit_stream(module, worker.toy_sample, max_steps=0, out_dir=tmp_path, name="toy")
    with pytest.raises(ValueError, match="name must be a plain, non-empty file name; got 'a/b'"):
        fit_stream(module, worker.toy_sample, max_steps=5, out_dir=tmp_path, name="a/b")
    with pytest.raises(TypeError, match="module must be a SetModelModule; got Linear"):
        fit_stream(
            torch.nn.Linear(2, 2),  # type: ignore[arg-type]
            worker.toy_sample,
            max_steps=5,
            out_dir=tmp_path,
            name="toy",
        )
    with pytest.raises(TypeError, match="settings must be EngineSettings; got dict"):
        fit_stream(
            module,
            worker.toy_sample,
            max_steps=5,
            out_dir=tmp_path,
            name="toy",
            settings={"devices": 1},  # type: ignore[arg-type]
        )


def test_engine_flags() -> None:
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    defaults = engine_settings_from_args(parser.parse_args([]))
    assert defaults == EngineSettings()
    args = parser.parse_args(
        [
            *("--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"),
            *("--num-nodes", "3", "--logger", "none", "--checkpoint-every", "7", "--no-progress"),
        ]
    )
    settings = engine_settings_from_args(args, EngineSettings(precision="bf16-mixed"))
    assert settings == EngineSettings(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        num_nodes=3,
        logger="none",
        checkpoint_every=7,
        progress=False,
        precision="bf16-mixed",
    )
    with pytest.raises(ValueError, match="strategy must be one of"):
        engine_settings_from_args(parser.parse_args(["--strategy", "nope"]))
