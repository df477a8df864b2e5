"""The networks: the authors' architectures, output parameterisation, symmetry, padding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsets.attention import SetTransformer
from deepsets.experiments._common import generator_for
from deepsets.experiments.clustering.data import sample_mixtures
from deepsets.experiments.clustering.model import (
    EquivariantMeanNet,
    MixtureEstimator,
    build_model,
    parameter_count,
    parse_output,
)
from deepsets.testing import assert_invariant

from .conftest import nan_padded

ARCHS = ["rff", "rffp_mean", "isab_pma"]


def mab(dq: int, dk: int, dv: int) -> int:
    """Parameters of the authors' MAB (fc_q, fc_k, fc_v, fc_o with biases)."""
    return (dq * dv + dv) + 2 * (dk * dv + dv) + (dv * dv + dv)


def test_isab_pma_has_the_authors_parameter_count() -> None:
    # modules.py/models.py of juho-lee/set_transformer: ISAB(2, 128, m=16), ISAB(128, 128),
    # PMA(128, k=4), SAB, SAB, Linear(128, 4).
    d, m, k = 128, 16, 4
    isab1 = m * d + mab(d, 2, d) + mab(2, d, d)
    isab2 = m * d + 2 * mab(d, d, d)
    pma = k * d + mab(d, d, d)
    expected = isab1 + isab2 + pma + 2 * mab(d, d, d) + (d * 4 + 4)
    model = build_model("isab_pma")
    assert isinstance(model, SetTransformer)
    assert parameter_count(model) == expected


def test_rff_has_the_authors_parameter_count() -> None:
    # models.py DeepSet: 4 Linear layers in the encoder, 4 in the decoder, 4 x 4 outputs.
    d = 128
    expected = (2 * d + d) + 3 * (d * d + d) + 3 * (d * d + d) + (d * 16 + 16)
    assert parameter_count(build_model("rff")) == expected


def test_rffp_mean_counts_two_maps_per_equivariant_layer() -> None:
    d = 32
    layers = (2 * 2 * d + d) + 3 * (2 * d * d + d)  # Λ with bias, Γ without
    rho = 3 * (d * d + d) + (d * 16 + 16)
    assert parameter_count(build_model("rffp_mean", width=d)) == layers + rho


def test_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"architecture.*rff"):
        build_model("lstm")


def test_equivariant_mean_net_rejects_zero_width() -> None:
    with pytest.raises(ValueError, match="width"):
        EquivariantMeanNet(2, width=0, depth=2, rho_depth=1, output_dim=3)


@pytest.mark.parametrize("arch", ARCHS)
def test_output_is_a_mixture(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, width=16, num_inducing=4)
    raw = model(torch.randn(3, 11, 2))
    assert raw.shape == (3, 4, 4)
    params = parse_output(raw * 100)  # extreme outputs stay a valid mixture
    assert torch.allclose(params.log_weights.exp().sum(-1), torch.ones(3))
    assert (params.sigma > 0).all() and params.means.shape == (3, 4, 2)
    assert torch.equal(params.means, raw[..., 1:3] * 100)


def test_parse_output_follows_the_authors_code() -> None:
    # mvn_diag.py: pi = softmax(raw[..., 0]), mu = raw[..., 1:3], sigma = softplus(raw[..., 3:])
    raw = torch.tensor([[[0.0, 1.0, 2.0, 0.0], [torch.log(torch.tensor(3.0)), -1.0, 0.5, 2.0]]])
    params = parse_output(raw)
    assert params.log_weights.exp().tolist()[0] == pytest.approx([0.25, 0.75])
    softplus = [torch.log1p(torch.exp(torch.tensor(v))).item() for v in (0.0, 2.0)]
    assert params.sigma[0].tolist() == pytest.approx(softplus, abs=2e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_models_are_permutation_invariant(arch: str) -> None:
    torch.manual_seed(1)
    model = build_model(arch, width=16, num_inducing=4).eval()
    x = torch.randn(2, 9, 2)
    mask = torch.tensor([[True] * 9, [True] * 6 + [False] * 3])
    assert_invariant(model, x, mask, generator=generator_for(3))


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(ARCHS), st.lists(st.integers(1, 8), min_size=1, max_size=4))
def test_padding_never_matters(arch: str, sizes: list[int]) -> None:
    torch.manual_seed(2)
    model = build_model(arch, width=8, num_inducing=2).eval()
    sets = [torch.randn(n, 2) for n in sizes]
    x, mask = nan_padded(sets, 3)
    with torch.no_grad():
        padded = model(x, mask)
        alone = torch.cat([model(s.unsqueeze(0)) for s in sets])
        nested = model(torch.nested.nested_tensor(sets, layout=torch.jagged))
    assert torch.isfinite(padded).all()
    assert torch.allclose(padded, alone, atol=1e-5)
    assert torch.allclose(nested, alone, atol=1e-5)


def test_estimator_predicts_the_mixture_of_every_set() -> None:
    torch.manual_seed(4)
    model = build_model("rff", width=8)
    batch = sample_mixtures(3, generator=generator_for(0), min_points=4, max_points=9)
    params = MixtureEstimator(model).predict(batch)
    expected = parse_output(model(batch.x, batch.mask))
    assert torch.allclose(params.means, expected.means)
    assert "MixtureEstimator" in repr(MixtureEstimator(model))
