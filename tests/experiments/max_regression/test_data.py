"""The data of the max-regression experiment: sizes, values, targets, determinism."""

from __future__ import annotations

import torch

from deepsets.experiments._common import generator_for
from deepsets.experiments.max_regression.data import (
    HIGH,
    fixed_test_set,
    fixed_validation_set,
    make_stream_sampler,
    sample_sets,
)


def test_sets_follow_the_papers_distribution() -> None:
    x, mask, y = sample_sets(20_000, 10, generator_for(7))
    sizes = mask.sum(dim=1)
    assert x.shape == (20_000, 10, 1) and mask.dtype == torch.bool and y.shape == (20_000, 1)
    # n ~ U{1..10}: every size appears, about 1/10 of the time each (±4 sd of a binomial)
    counts = torch.bincount(sizes, minlength=11)
    assert counts[0] == 0 and bool(((counts[1:] - 2000).abs() < 4 * 42.5).all())
    # masks are prefixes: element i is real iff i < n
    assert torch.equal(mask, torch.arange(10) < sizes.unsqueeze(1))
    real = x[..., 0][mask]
    assert float(real.min()) >= 0.0 and float(real.max()) <= HIGH
    assert abs(float(real.mean()) - HIGH / 2) < 0.5  # U[0, 100]: mean 50, sd of mean ~0.2
    assert bool((x[..., 0][~mask] == 0).all())  # padding holds 0


def test_target_is_the_max_over_the_real_elements() -> None:
    x, mask, y = sample_sets(64, 10, generator_for(3))
    for b in range(64):
        assert float(y[b, 0]) == float(x[b, mask[b], 0].max())


def test_stream_is_a_pure_function_of_seed_step_and_rank() -> None:
    sample = make_stream_sampler(batch_size=16, max_size=10, seed=5)
    cpu = torch.device("cpu")
    first, again = sample(3, 0, cpu), sample(3, 0, cpu)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], sample(4, 0, cpu)[0])
    assert not torch.equal(first[0], sample(3, 1, cpu)[0])
    x, y, mask = first  # the engine's (features, target, mask) order
    assert x.shape == (16, 10, 1) and y.shape == (16, 1) and mask.shape == (16, 10)


def test_fixed_test_set_is_the_same_for_every_call_and_differs_from_training() -> None:
    a, b = fixed_test_set(100, 10, 2019), fixed_test_set(100, 10, 2019)
    assert all(torch.equal(s, t) for s, t in zip(a, b, strict=True))
    train = make_stream_sampler(batch_size=100, max_size=10, seed=2019)(0, 0, torch.device("cpu"))
    assert not torch.equal(a[0], train[0])
    valid, again = fixed_validation_set(100, 10, 2019), fixed_validation_set(100, 10, 2019)
    assert all(torch.equal(s, t) for s, t in zip(valid, again, strict=True))
    assert not torch.equal(valid[0], a[0]) and not torch.equal(valid[0], train[0])
