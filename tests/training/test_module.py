"""SetModelModule: losses against their formulas, schedules, validation."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.testing import assert_close

from deepsets import DeepSetsInvariant
from deepsets.training import LOSSES, SCHEDULES, SetModelModule


def _module(**kwargs: object) -> SetModelModule:
    torch.manual_seed(0)
    return SetModelModule(DeepSetsInvariant(3, [4], [], 2), **kwargs)  # type: ignore[arg-type]


def test_losses_match_their_formulas() -> None:
    prediction = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    target = torch.tensor([[0.0, 4.0], [1.0, -1.0]])
    # mean over all outputs of (p - y)^2 and |p - y|
    assert_close(_module(loss="mse").compute_loss(prediction, target), torch.tensor(1.5))
    assert_close(_module(loss="l1").compute_loss(prediction, target), torch.tensor(1.0))
    labels = torch.tensor([1, 0])
    expected = -(prediction.log_softmax(-1)[torch.arange(2), labels]).mean()
    assert_close(_module(loss="cross_entropy").compute_loss(prediction, labels), expected)
    assert set(LOSSES) == {"mse", "l1", "cross_entropy"}


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_training_step_uses_the_mask() -> None:
    module = _module()
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    target = torch.zeros(2, 2)
    with_mask = module.training_step((x, target, mask), 0)
    expected = torch.nn.functional.mse_loss(module.model(x, mask), target)
    assert_close(with_mask, expected)
    assert not torch.allclose(with_mask, module.training_step((x, target), 0))


def _learning_rates(schedule: str, steps: int) -> list[float]:
    module = _module(lr=0.1, lr_schedule=schedule, max_steps=steps)
    configured = module.configure_optimizers()
    if isinstance(configured, torch.optim.Optimizer):
        return [configured.param_groups[0]["lr"]] * steps
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert configured["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_schedules() -> None:
    assert _learning_rates("constant", 5) == [0.1] * 5
    cosine = _learning_rates("cosine", 10)
    assert cosine[0] == pytest.approx(0.1)
    assert cosine[5] == pytest.approx(0.05)  # 0.1 * (1 + cos(pi / 2)) / 2
    assert all(a > b for a, b in itertools.pairwise(cosine))
    onecycle = _learning_rates("onecycle", 100)
    assert max(onecycle) == pytest.approx(0.1, rel=1e-3)  # the peak is lr
    assert onecycle[0] < 0.01 and onecycle[-1] < 1e-4  # warm-up and anneal
    assert set(SCHEDULES) == {"constant", "cosine", "onecycle"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "hinge"}, r"loss must be one of 'mse', 'l1', 'cross_entropy'; got 'hinge'"),
        (
            {"lr_schedule": "step"},
            r"lr_schedule must be one of 'constant', 'cosine', 'onecycle'; got 'step'",
        ),
        ({"lr": 0.0}, r"lr must be a number > 0; got 0.0"),
        ({"max_steps": 0}, r"max_steps must be a positive int; got 0"),
        ({"max_steps": 2.5}, r"max_steps must be a positive int; got 2.5"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _module(**kwargs)


def test_model_must_be_a_module() -> None:
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module; got function"):
        SetModelModule(lambda x, mask=None: x)  # type: ignore[arg-type]
