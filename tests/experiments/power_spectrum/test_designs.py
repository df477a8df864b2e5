"""The regime networks: symmetry (permutations, padding, shifts), the structured design's
solve against the exact Gaussian posterior, and the design builder."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsets.experiments._common import generator_for
from deepsets.experiments.power_spectrum.bayes import marginal_posterior
from deepsets.experiments.power_spectrum.data import encode, sample_power_spectrum
from deepsets.experiments.power_spectrum.designs import (
    GenericSpectrumNet,
    StructuredSpectrumNet,
    prior_mean,
)
from deepsets.experiments.power_spectrum.model import build_design
from deepsets.testing import assert_invariant

F64 = torch.float64


def _features(seed: int, batch: int, set_size: int, k_max: int = 6, noise: float = 0.1):
    data = sample_power_spectrum(
        batch, set_size, k_max, generator=generator_for(seed), noise=noise, dtype=F64
    )
    return encode(data.x, data.y, "raw")  # (B, N, 2)


def _model(design: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_design(design, k_fin=3, num_frequencies=6, hidden=[16, 8], rho_hidden=[8])
    for p in model.parameters():  # move off the zero init, so every path is exercised
        p.data.add_(0.05 * torch.randn_like(p))
    return model.double().eval()


@settings(max_examples=20, deadline=None)
@given(
    design=st.sampled_from(["generic", "structured"]),
    set_size=st.integers(14, 24),
    seed=st.integers(0, 2**16),
)
def test_designs_are_permutation_invariant_also_with_padding(
    design: str, set_size: int, seed: int
) -> None:
    model = _model(design, seed)
    features = _features(seed, 3, set_size)
    assert model(features).shape == (3, 3)
    generator = torch.Generator().manual_seed(seed)
    assert_invariant(model, features, generator=generator)
    # padding: extra rows of garbage behind a mask change nothing
    padded = torch.cat([features, torch.randn(3, 5, 2, dtype=F64, generator=generator)], 1)
    mask = torch.ones(3, set_size + 5, dtype=torch.bool)
    mask[:, set_size:] = False
    assert torch.allclose(model(padded, mask), model(features), atol=1e-9)
    assert_invariant(model, padded, mask, generator=generator)


@settings(max_examples=15, deadline=None)
@given(shift=st.floats(0, 2 * math.pi), seed=st.integers(0, 2**16))
def test_structured_design_is_invariant_to_shifting_the_positions(shift: float, seed: int) -> None:
    # A shift rotates every pair (A_k, B_k); the head sees rotation-invariant summaries.
    model = _model("structured", seed)
    features = _features(seed, 3, 16)
    shifted = features + torch.tensor([shift, 0.0], dtype=F64)
    assert torch.allclose(model(shifted), model(features), atol=1e-7)


@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_structured_solve_with_the_true_prior_is_the_gaussian_posterior(noise: float) -> None:
    """With Λ_j = 2j² (the prior precision), s = σ and J = k_max, the learned solve is the
    exact posterior of :mod:`bayes` (computed there in function space)."""
    k_max = 6
    model = StructuredSpectrumNet(3, num_frequencies=k_max).double()
    scale = model.structure_scale
    with torch.no_grad():  # exp(a + b log j) = 2 j²
        model.log_precision.copy_(torch.tensor([math.log(2.0), 2.0]) / scale)
        model.log_noise.fill_(math.log(noise) / scale)
    features = _features(1, 8, 10, k_max=k_max, noise=noise)
    x, y = features[..., 0], features[..., 1]
    mean, cov = model.posterior(x, y)
    exact = marginal_posterior(x, y, k_max=k_max, k_fin=3, noise=noise)
    assert torch.allclose(mean, exact.mean, atol=1e-9)
    assert torch.allclose(cov, exact.cov, atol=1e-9)
    # the head starts at zero: the untrained output is the plug-in log|m_k|²
    assert torch.allclose(model(features), mean.square().sum(-1).log(), atol=1e-12)


def test_generic_design_starts_near_the_prior_scale() -> None:
    model = _model("generic", 0)
    out = model(_features(0, 4, 16))
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    assert torch.equal(model.offset, prior_mean(3).double())


def test_bad_designs_and_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="design must be one of 'generic', 'structured'"):
        build_design("deep", k_fin=3, num_frequencies=4, hidden=[4])
    with pytest.raises(ValueError, match="k_fin must be <= num_frequencies=2"):
        StructuredSpectrumNet(3, num_frequencies=2)
    with pytest.raises(ValueError, match=r"raw \(x, y\) pairs of shape \(B, N, 2\)"):
        GenericSpectrumNet(2, num_frequencies=2)(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="k_fin must be"):
        GenericSpectrumNet(0, num_frequencies=2)
    assert "structure_scale=10.0" in repr(StructuredSpectrumNet(2, num_frequencies=2))


def test_generic_design_pools_the_fourier_moments_of_each_set() -> None:
    """The pooled statistics against a loop over the real elements of each set."""
    model = GenericSpectrumNet(2, num_frequencies=3).double()
    features = _features(3, 4, 9)
    mask = torch.rand(4, 9, generator=torch.Generator().manual_seed(3)) > 0.3
    mask[:, 0] = True
    z = model.pooled(features, mask)
    for b in range(4):
        x, y = features[b, mask[b], 0], features[b, mask[b], 1]
        j = torch.arange(1, 4, dtype=F64)
        psi = torch.cat([torch.cos(x[:, None] * j), torch.sin(x[:, None] * j)], -1)  # (n, 6)
        gram = psi.T @ psi / len(x)
        rows, cols = torch.triu_indices(6, 6)
        expected = torch.cat(
            [
                psi.mean(0),
                (psi * y[:, None]).mean(0),
                y.mean()[None],
                y.square().mean()[None],
                gram[rows, cols],
            ]
        )
        assert torch.allclose(z[b], expected, atol=1e-12)


def test_generic_design_standardises_with_the_first_training_batch_only() -> None:
    torch.manual_seed(0)
    model = GenericSpectrumNet(2, num_frequencies=2).double()
    first, second = _features(0, 16, 12), _features(1, 16, 12) * 3
    model.eval()
    model(first)  # evaluation never measures
    assert not bool(model.calibrated)
    model.train()
    model(first)
    z = model.pooled(first)
    assert torch.allclose(model.feature_mean, z.mean(0))
    assert torch.allclose(model.feature_scale, z.std(0).clamp_min(1e-6))
    kept = model.feature_scale.clone()
    model(second)  # later batches do not move it
    assert torch.equal(model.feature_scale, kept)
    # the measurement travels with the weights (a resumed or reloaded model keeps it)
    state = model.state_dict()
    assert {"feature_mean", "feature_scale", "calibrated"} <= set(state)
