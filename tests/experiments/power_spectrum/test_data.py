"""The power-spectrum data: functions of eq. 4, the training stream, encodings, fixed test sets."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from deepsets.experiments._common import generator_for
from deepsets.experiments.power_spectrum.baselines import EULER_GAMMA
from deepsets.experiments.power_spectrum.data import (
    ENCODINGS,
    encode,
    evaluate_functions,
    fixed_spectra,
    make_stream_sampler,
    sample_at,
    sample_power_spectrum,
)

from .conftest import sample_batch


def test_generator_is_reproducible_and_seed_dependent() -> None:
    a, b, c = sample_batch(3), sample_batch(3), sample_batch(4)
    for name in ("x", "y", "log_power", "phase"):
        assert torch.equal(getattr(a, name), getattr(b, name))
        assert not torch.equal(getattr(a, name), getattr(c, name))


def test_stream_sampler_is_a_pure_function_of_step_and_rank() -> None:
    sample = make_stream_sampler(set_size=8, batch_size=4, k_max=4, k_fin=2, encoding="raw", seed=1)
    cpu = torch.device("cpu")
    first, again, other_step, other_rank = (
        sample(5, 0, cpu),
        sample(5, 0, cpu),
        sample(6, 0, cpu),
        sample(5, 1, cpu),
    )
    assert first[0].shape == (4, 8, 2) and first[1].shape == (4, 2)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other_step[0])
    assert not torch.equal(first[0], other_rank[0])


def test_spectrum_statistics_match_eq4() -> None:
    data = sample_power_spectrum(20_000, 2, 4, generator=generator_for(0))
    k = torch.arange(1, 5, dtype=torch.float64)
    power = data.log_power.double().exp()
    # p_k ~ Exponential(mean 1/k²): mean 1/k², E[log p_k] = -2 log k - γ, Var = π²/6.
    assert torch.allclose(power.mean(0) * k**2, torch.ones(4, dtype=torch.float64), atol=0.04)
    expected_log = -2 * k.log() - EULER_GAMMA
    assert torch.allclose(data.log_power.double().mean(0), expected_log, atol=0.04)
    assert torch.allclose(
        data.log_power.double().var(0),
        torch.full((4,), math.pi**2 / 6, dtype=torch.float64),
        atol=0.08,
    )
    # Phases uniform on [0, 2π), positions uniform on [0, 2π).
    assert float(data.phase.min()) >= 0 and float(data.phase.max()) < 2 * math.pi
    assert abs(float(data.phase.mean()) - math.pi) < 0.03
    assert float(data.x.min()) >= 0 and float(data.x.max()) < 2 * math.pi
    # E[f(x)²] = Σ_k E[p_k] / 2.
    expected_energy = float((0.5 / k**2).sum())
    assert abs(float(data.y.double().square().mean()) - expected_energy) < 0.03


def test_function_values_follow_eq4_term_by_term() -> None:
    data = sample_batch(1, batch=3, set_size=5, k_max=70)  # more than one frequency chunk
    k = torch.arange(1, 71, dtype=torch.float64)
    angle = data.x.double()[..., None] * k + data.phase.double()[:, None, :]
    direct = ((0.5 * data.log_power.double())[:, None, :].exp() * angle.cos()).sum(-1)
    assert torch.allclose(data.y.double(), direct, atol=1e-4)


def test_encodings() -> None:
    x = torch.rand(2, 5) * 2 * math.pi
    y = torch.randn(2, 5)
    raw, circle = encode(x, y, "raw"), encode(x, y, "circle")
    assert raw.shape == (2, 5, ENCODINGS["raw"]) and circle.shape == (2, 5, ENCODINGS["circle"])
    assert torch.equal(raw[..., 0], x) and torch.equal(raw[..., 1], y)
    assert torch.allclose(circle[..., 0].square() + circle[..., 1].square(), torch.ones(2, 5))
    assert torch.equal(circle[..., 2], y)
    with pytest.raises(ValueError, match="encoding must be one of 'raw', 'circle'; got 'polar'"):
        encode(x, y, "polar")


@given(shift=st.floats(-10.0, 10.0))
def test_circle_encoding_turns_a_shift_into_a_rotation(shift: float) -> None:
    x = torch.rand(1, 7, dtype=torch.float64) * 2 * math.pi
    y = torch.randn(1, 7, dtype=torch.float64)
    c, s = math.cos(shift), math.sin(shift)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    moved = encode(x + shift, y, "circle")
    expected = encode(x, y, "circle")[..., :2] @ rotation.T
    assert torch.allclose(moved[..., :2], expected, atol=1e-9)
    assert torch.equal(moved[..., 2], y[0].expand_as(moved[..., 2]))


@pytest.mark.parametrize(("k_max", "chunk"), [(3, 64), (64, 64), (200, 64), (512, 64), (9, 4)])
def test_evaluate_functions_is_the_direct_sum(k_max: int, chunk: int) -> None:
    """The blockwise rotation equals sum_k sqrt(p_k) cos(k x + phase_k), written out in
    float64; with one block it is the direct sum in float32 bit for bit."""
    generator = torch.Generator().manual_seed(k_max)
    log_power = torch.randn(5, k_max, generator=generator, dtype=torch.float64) - 2
    phase = torch.rand(5, k_max, generator=generator, dtype=torch.float64) * 2 * math.pi
    x = torch.rand(5, 33, generator=generator, dtype=torch.float64) * 2 * math.pi
    k = torch.arange(1, k_max + 1, dtype=torch.float64)
    terms = (0.5 * log_power).exp()[:, None, :] * torch.cos(
        x[..., None] * k + phase[:, None, :]
    )  # (B, N, K)
    direct = terms.sum(-1)
    assert torch.allclose(evaluate_functions(x, log_power, phase, chunk), direct, atol=1e-11)
    if k_max <= chunk:
        single = [t.float() for t in (x, log_power, phase)]
        amplitude = (0.5 * single[1]).exp()
        angle = single[0].unsqueeze(-1) * k.float()
        plain = angle.cos() @ (amplitude * single[2].cos()).unsqueeze(-1)
        plain = plain - angle.sin() @ (amplitude * single[2].sin()).unsqueeze(-1)
        assert torch.equal(evaluate_functions(*single, chunk), plain.squeeze(-1))


def test_fixed_spectra_are_shared_across_set_sizes() -> None:
    log_power, phase = fixed_spectra(6, 4, seed=1)
    again = fixed_spectra(6, 4, seed=1)
    assert torch.equal(log_power, again[0]) and torch.equal(phase, again[1])
    small, large = sample_at(log_power, phase, 8, seed=1), sample_at(log_power, phase, 32, seed=1)
    assert small.x.shape == (6, 8) and large.x.shape == (6, 32)
    assert torch.equal(small.log_power, large.log_power)
    assert torch.allclose(small.y, evaluate_functions(small.x, log_power, phase))
    with pytest.raises(ValueError, match="log_power and phase"):
        sample_at(log_power, phase[:, :2], 8, seed=1)


def test_the_four_regimes_are_the_issues() -> None:
    from deepsets.experiments.power_spectrum.data import REGIMES, Regime

    assert {name: (r.k_max, r.k_fin, r.set_size, r.noise) for name, r in REGIMES.items()} == {
        "blog": (4, 4, 128, 0.0),
        "noisy": (4, 4, 32, 0.3),
        "underdetermined": (64, 8, 32, 0.0),
        "aliasing": (512, 8, 512, 0.0),
    }
    with pytest.raises(ValueError, match="need 1 <= k_fin <= k_max"):
        Regime("bad", k_max=2, k_fin=3, set_size=4, noise=0.0)
    with pytest.raises(ValueError, match="noise must be a number >= 0"):
        Regime("bad", k_max=2, k_fin=1, set_size=4, noise=-1.0)
    assert REGIMES["underdetermined"].with_set_size(8).set_size == 8


def test_regime_draws_are_fixed_separate_and_noisy_as_defined() -> None:
    import torch

    from deepsets.experiments.power_spectrum.data import (
        REGIMES,
        evaluate_functions,
        make_regime_sampler,
        regime_sets,
    )

    noisy = REGIMES["noisy"]
    test = regime_sets(noisy, 200, stream="test", seed=0)
    assert test.x.dtype == torch.float64 and test.x.shape == (200, 32)
    again = regime_sets(noisy, 130, stream="test", seed=0)  # a prefix: same first chunk
    assert torch.equal(again.y[:128], test.y[:128])
    valid = regime_sets(noisy, 200, stream="valid", seed=0)
    assert not torch.equal(valid.x, test.x)
    residual = test.y - evaluate_functions(test.x, test.log_power, test.phase)
    assert abs(float(residual.std()) - 0.3) < 0.01  # sigma of the noisy regime
    clean = regime_sets(REGIMES["blog"], 8, stream="test", seed=0)
    assert torch.equal(clean.y, evaluate_functions(clean.x, clean.log_power, clean.phase))
    sample = make_regime_sampler(noisy, batch_size=4, seed=1)
    features, target = sample(3, 0, torch.device("cpu"))
    assert features.shape == (4, 32, 2) and target.shape == (4, 4)
    assert torch.equal(sample(3, 0, torch.device("cpu"))[0], features)
    with pytest.raises(ValueError, match="stream must be 'valid' or 'test'"):
        regime_sets(noisy, 4, stream="train", seed=0)
