"""Data: the mixture distribution, the stream, the test set, the log-likelihood."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsets.experiments._common import generator_for
from deepsets.experiments.clustering.data import (
    MixtureParams,
    fixed_test_sets,
    make_stream_sampler,
    mixture_log_prob,
    packed,
    sample_mixtures,
    set_log_likelihood,
)

from .conftest import nan_padded


def draw(seed: int, batch: int = 64, **kwargs: int):  # type: ignore[no-untyped-def]
    return sample_mixtures(batch, generator=generator_for(seed), **kwargs)


def test_sizes_means_weights_and_mask_are_in_range() -> None:
    batch = draw(0, 256)
    assert batch.sizes.min() >= 100 and batch.sizes.max() <= 500
    assert batch.x.shape == (256, int(batch.sizes.max()), 2)
    assert torch.equal(batch.mask.sum(1), batch.sizes)
    assert batch.truth.means.abs().max() < 4
    weights = batch.truth.log_weights.exp()
    assert (weights > 0).all()
    assert torch.allclose(weights.sum(1), torch.ones(256))
    assert (batch.truth.sigma == 0.3).all()
    assert (batch.x[~batch.mask] == 0).all()
    assert batch.labels.min() >= 0 and batch.labels.max() <= 3


def test_size_limits_are_both_reached() -> None:
    batch = draw(1, 2000, min_points=3, max_points=5)
    assert set(batch.sizes.tolist()) == {3, 4, 5}


def test_distribution_matches_its_definition() -> None:
    batch = draw(2, 2000)
    # Dirichlet(1) on 4 components: every weight has mean 1/4 and variance 3/80.
    weights = batch.truth.log_weights.exp()
    assert weights.mean(0) == pytest.approx(torch.full((4,), 0.25), abs=0.015)
    assert weights.var(0) == pytest.approx(torch.full((4,), 3 / 80), rel=0.15)
    # Means uniform on (-4, 4): variance 64/12.
    assert batch.truth.means.var().item() == pytest.approx(64 / 12, rel=0.05)
    # Points: their component's mean plus N(0, 0.3^2) noise in each direction.
    centre = torch.gather(batch.truth.means, 1, batch.labels.unsqueeze(-1).expand(-1, -1, 2))
    noise = (batch.x - centre)[batch.mask]
    assert noise.mean(0).abs().max() < 0.005
    assert noise.std(0) == pytest.approx(torch.full((2,), 0.3), rel=0.01)
    # Labels follow the weights: the share of each component in a set is near its weight.
    share = torch.stack([((batch.labels == k) & batch.mask).sum(1) for k in range(4)], 1)
    share = share / batch.sizes.unsqueeze(1)
    assert (share - weights).abs().mean() < 0.02


def test_draws_are_deterministic_by_seed() -> None:
    a, b, c = draw(5), draw(5), draw(6)
    assert torch.equal(a.x, b.x) and torch.equal(a.truth.means, b.truth.means)
    assert not torch.equal(a.truth.means, c.truth.means)


def test_stream_is_a_pure_function_of_step_and_rank() -> None:
    sample = make_stream_sampler(batch_size=4, seed=3)
    x, target = sample(7, 0, torch.device("cpu"))
    again, _ = sample(7, 0, torch.device("cpu"))
    assert x.is_nested and target is x
    assert torch.equal(x.values(), again.values())
    cpu = torch.device("cpu")
    assert not torch.equal(x.values()[:10], sample(8, 0, cpu)[0].values()[:10])
    assert not torch.equal(x.values()[:10], sample(7, 1, torch.device("cpu"))[0].values()[:10])
    sizes = x.offsets().diff()
    assert sizes.shape == (4,) and sizes.min() >= 100 and sizes.max() <= 500


def test_test_set_is_fixed_and_has_the_asked_size() -> None:
    first = list(fixed_test_sets(25, seed=9, chunk=10))
    second = list(fixed_test_sets(25, seed=9, chunk=10))
    assert [b.x.shape[0] for b in first] == [10, 10, 5]
    assert all(torch.equal(a.x, b.x) for a, b in zip(first, second, strict=True))
    other = next(iter(fixed_test_sets(10, seed=10)))
    assert not torch.equal(first[0].truth.means, other.truth.means)


def random_params(batch: int, components: int, generator: torch.Generator) -> MixtureParams:
    return MixtureParams(
        log_weights=torch.randn(batch, components, generator=generator).log_softmax(-1),
        means=torch.randn(batch, components, 2, generator=generator) * 2,
        sigma=torch.rand(batch, components, generator=generator) + 0.2,
    )


def test_log_prob_matches_torch_distributions() -> None:
    g = generator_for(11)
    params = random_params(3, 4, g)
    x = torch.randn(3, 7, 2, generator=g) * 3
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=params.log_weights),
        torch.distributions.Independent(
            torch.distributions.Normal(params.means, params.sigma.unsqueeze(-1).expand(-1, -1, 2)),
            1,
        ),
    )
    expected = reference.log_prob(x.transpose(0, 1)).transpose(0, 1)  # (B, M)
    assert torch.allclose(mixture_log_prob(x, params), expected, atol=1e-5)


def test_log_prob_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    g = generator_for(12)
    params = random_params(2, 3, g)
    x = torch.randn(2, 5, 2, generator=g)
    for b in range(2):
        for i in range(5):
            density = sum(
                math.exp(params.log_weights[b, k])
                * stats.multivariate_normal(
                    params.means[b, k].numpy(), params.sigma[b, k].item() ** 2
                ).pdf(x[b, i].numpy())
                for k in range(3)
            )
            assert mixture_log_prob(x, params)[b, i].item() == pytest.approx(
                math.log(density), rel=1e-5
            )


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), st.integers(0, 2**16))
def test_set_log_likelihood_ignores_padding_and_agrees_packed(sizes: list[int], seed: int) -> None:
    g = generator_for(seed)
    params = random_params(len(sizes), 4, g)
    sets = [torch.randn(n, 2, generator=g) for n in sizes]
    x, mask = nan_padded(sets, 2)
    expected = torch.stack(
        [
            mixture_log_prob(s.unsqueeze(0), params.index(torch.tensor([b]))).mean()
            for b, s in enumerate(sets)
        ]
    )
    padded = set_log_likelihood(x, mask, params)
    assert torch.allclose(padded, expected, atol=1e-5)
    nested = torch.nested.nested_tensor(sets, layout=torch.jagged)
    assert torch.allclose(set_log_likelihood(nested, None, params), expected, atol=1e-5)


def test_packed_holds_the_real_points_only() -> None:
    batch = draw(13, 4, min_points=2, max_points=6)
    nested = packed(batch)
    assert torch.equal(nested.offsets().diff(), batch.sizes)
    for b in range(4):
        assert torch.equal(nested[b], batch.x[b, : int(batch.sizes[b])])
