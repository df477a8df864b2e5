"""The network: symmetry, parameter counts, the model builder, the network as an estimator."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from deepsets.experiments.power_spectrum.data import ENCODINGS, encode
from deepsets.experiments.power_spectrum.model import (
    NetworkEstimator,
    PowerSpectrumNet,
    build_model,
    dense_parameter_count,
    parameter_comparison,
    parameter_count,
)
from deepsets.testing import assert_invariant

from .conftest import sample_batch


@given(
    encoding=st.sampled_from(sorted(ENCODINGS)),
    depth=st.integers(1, 3),
    set_size=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_network_is_permutation_invariant(
    encoding: str, depth: int, set_size: int, seed: int
) -> None:
    torch.manual_seed(seed)
    model = PowerSpectrumNet(ENCODINGS[encoding], depth=depth, width=6, k_fin=3).double()
    data = sample_batch(seed, batch=3, set_size=set_size)
    features = encode(data.x, data.y, encoding).double()
    assert model(features).shape == (3, 3)
    assert_invariant(model, features, generator=torch.Generator().manual_seed(seed))
    mask = torch.rand(3, set_size, generator=torch.Generator().manual_seed(seed)) < 0.7
    mask[:, 0] = True
    assert_invariant(model, features, mask, generator=torch.Generator().manual_seed(seed))


def test_network_mean_pooling_ignores_repeating_the_set() -> None:
    torch.manual_seed(0)
    model = PowerSpectrumNet(3, depth=2, width=8, k_fin=4).double()
    features = torch.randn(2, 5, 3, dtype=torch.float64)
    assert torch.allclose(model(features), model(features.repeat(1, 3, 1)), atol=1e-12)


@pytest.mark.parametrize(("input_dim", "depth", "width", "k_fin"), [(2, 1, 4, 4), (3, 4, 16, 8)])
def test_network_parameter_count(input_dim: int, depth: int, width: int, k_fin: int) -> None:
    model = PowerSpectrumNet(input_dim, depth=depth, width=width, k_fin=k_fin)
    expected = (
        (2 * input_dim + 1) * width + (depth - 1) * (2 * width**2 + width) + (width + 1) * k_fin
    )
    assert parameter_count(model) == expected
    assert "PermutationEquivariantLayer" in repr(model)


def test_network_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="depth"):
        PowerSpectrumNet(2, depth=0, width=4, k_fin=4)


def test_dense_parameter_count_is_the_seeds_footnote() -> None:
    assert dense_parameter_count(512, [2, 4]) == (512 * 2) * (512 * 4) + 512 * 4 == 2_099_200


def test_parameter_comparison_is_the_seeds_20_against_2099200() -> None:
    counts = parameter_comparison(512)
    assert counts["equivariant"] == 2 * 4 * 2 + 4 == 20
    assert counts["dense"] == (2 * 512) * (4 * 512) + 4 * 512 == 2_099_200
    assert parameter_comparison(3)["dense"] == 6 * 12 + 12


def test_build_model() -> None:
    model = build_model("circle", depth=2, width=5, k_fin=4)
    assert model.input_dim == 3 and model.depth == 2
    assert parameter_count(build_model("raw", depth=1, width=4, k_fin=4)) == 20 + 5 * 4
    with pytest.raises(ValueError, match="encoding must be one of"):
        build_model("polar", depth=1, width=4, k_fin=4)


def test_network_estimator_encodes_and_runs_the_model() -> None:
    torch.manual_seed(0)
    model = build_model("raw", depth=1, width=4, k_fin=2)
    data = sample_batch(1, batch=3, set_size=5)
    expected = model(encode(data.x, data.y, "raw"))
    assert torch.equal(NetworkEstimator(model, "raw").predict(data.x, data.y), expected)
    with pytest.raises(ValueError, match="encoding must be one of"):
        NetworkEstimator(model, "polar")
