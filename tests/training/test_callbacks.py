"""InterruptAt, StepProgressBar and StepReporter (their output in a real run is tested in
test_engine.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deepsets.training import InterruptAt, StepProgressBar, StepReporter


def test_interrupt_at_raises_from_its_step_on() -> None:
    callback = InterruptAt(3)
    for step in (1, 2):
        callback.on_train_batch_end(SimpleNamespace(global_step=step), None, None, None, 0)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="simulated crash at step 3"):
        callback.on_train_batch_end(SimpleNamespace(global_step=3), None, None, None, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [0, -1, 2.0, True])
def test_interrupt_at_rejects_bad_steps(step: object) -> None:
    with pytest.raises(ValueError, match="step must be a positive int"):
        InterruptAt(step)  # type: ignore[arg-type]


def test_progress_bar_settings() -> None:
    bar = StepProgressBar(refresh_rate=5, description="run")
    assert bar.refresh_rate == 5
    assert bar.description == "run"


def test_step_reporter_rejects_bad_settings() -> None:
    with pytest.raises(TypeError, match="report must be callable; got int"):
        StepReporter(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every must be a positive int; got 0"):
        StepReporter(print, every=0)
