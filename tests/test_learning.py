"""The invariant model learns simple set functions and generalises to larger sets.

Elements are scalars drawn from U(0, 1); training sets have 1–10 elements, padded to 10
with a bool mask and random garbage at the padding. After a short Adam run (CPU, seeded,
about a second each) every model is tested on fresh sets of the training sizes and on sets
two to four times larger than any seen in training.

The error measure is the mean absolute error divided by the spread of the target over the
training distribution (its mean absolute deviation), so 1.0 is what predicting a constant
gets and the thresholds below say "learned to within a few per cent of the target's range".
Sum-like targets (sum, cardinality, sum of squares) use a linear ρ: then
f(X) = w · Σ φ(x) + b extrapolates exactly in the set size once φ is right, which is the
structural reason Deep Sets generalises to larger sets. Mean and max use a small MLP ρ;
their pooled value stays in the training range however large the set.

Thresholds were chosen after running seeds 0–9 locally (worst case well below them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from deepsets import DeepSetsInvariant

pytestmark = pytest.mark.slow  # trains models; deselect with -m "not slow"

TRAIN_SIZES = (1, 10)
LARGE_SIZES = (20, 40)
STEPS = 1000
LEARNING_RATE = 3e-2
BATCH = 128


@dataclass(frozen=True)
class Task:
    target: Callable[[Tensor, Tensor], Tensor]  # (x (B, M), mask (B, M)) -> (B,)
    pool: str
    phi: tuple[int, ...]
    rho: tuple[int, ...]
    in_distribution: float  # max normalised error on training-size sets
    larger_sets: float  # max normalised error on sets 2-4x larger


def _sum(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum(dim=1)


def _max(x: Tensor, mask: Tensor) -> Tensor:
    return x.masked_fill(~mask, float("-inf")).amax(dim=1)


def _mean(x: Tensor, mask: Tensor) -> Tensor:
    return _sum(x, mask) / mask.sum(dim=1)


def _cardinality(x: Tensor, mask: Tensor) -> Tensor:
    return mask.sum(dim=1).to(x.dtype)


def _sum_of_squares(x: Tensor, mask: Tensor) -> Tensor:
    return (x * x * mask).sum(dim=1)


TASKS = {
    "sum": Task(_sum, "sum", (16,), (), 0.05, 0.1),
    "cardinality": Task(_cardinality, "sum", (8,), (), 0.05, 0.1),
    "sum_of_squares": Task(_sum_of_squares, "sum", (32,), (), 0.1, 0.2),
    "mean": Task(_mean, "mean", (16,), (16,), 0.05, 0.05),
    "max": Task(_max, "max", (16,), (16,), 0.05, 0.05),
}


def _sets(count: int, sizes: tuple[int, int], generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``x (count, M_max)`` in U(0, 1) with garbage padding and its bool mask."""
    low, high = sizes
    size = torch.randint(low, high + 1, (count,), generator=generator)
    mask = torch.arange(high).unsqueeze(0) < size.unsqueeze(1)
    x = torch.rand(count, high, generator=generator)
    garbage = torch.randn(count, high, generator=generator) * 100
    return torch.where(mask, x, garbage), mask


def _normalised_error(model: DeepSetsInvariant, task: Task, x: Tensor, mask: Tensor) -> float:
    with torch.no_grad():
        prediction = model(x.unsqueeze(-1), mask).squeeze(-1)
    return float((prediction - task.target(x, mask)).abs().mean())


def _train(task: Task, seed: int) -> tuple[float, float]:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DeepSetsInvariant(1, list(task.phi), list(task.rho), 1, pool_type=task.pool)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, STEPS)
    for _ in range(STEPS):
        x, mask = _sets(BATCH, TRAIN_SIZES, generator)
        loss = (model(x.unsqueeze(-1), mask).squeeze(-1) - task.target(x, mask)).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    model.eval()
    # the spread of the target over the training distribution: what a constant would get
    x, mask = _sets(4096, TRAIN_SIZES, generator)
    y = task.target(x, mask)
    spread = float((y - y.mean()).abs().mean())
    inside = _normalised_error(model, task, x, mask) / spread
    x, mask = _sets(1024, LARGE_SIZES, generator)
    larger = _normalised_error(model, task, x, mask) / spread
    return inside, larger


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models: one thread is fastest, and far faster on a shared, loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_learns_and_generalises_to_larger_sets(name: str) -> None:
    task = TASKS[name]
    inside, larger = _train(task, seed=0)
    assert inside < task.in_distribution, f"{name}: error {inside:.4f} on training sizes"
    assert larger < task.larger_sets, f"{name}: error {larger:.4f} on sets of 20-40"
