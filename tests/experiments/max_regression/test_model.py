"""The models of the max-regression experiment: the authors' architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepsets import DeepSetsInvariant, SetTransformer
from deepsets.experiments.max_regression.model import (
    SetTransformerRegressor,
    build_model,
    parameter_count,
)
from deepsets.testing import assert_invariant


def _linear_count(i: int, o: int) -> int:
    return i * o + o


def test_deep_sets_rows_are_the_authors_rff_plus_pooling() -> None:
    for pool in ("mean", "sum", "max"):
        model = build_model(f"rff-{pool}")
        assert isinstance(model, DeepSetsInvariant) and model.pool_type == pool
    # φ: 1→64→64→64→64, ρ: 64→64→1 (the notebook's SmallDeepSet)
    expected = _linear_count(1, 64) + 3 * _linear_count(64, 64)
    expected += _linear_count(64, 64) + _linear_count(64, 1)
    assert parameter_count(build_model("rff-max")) == expected


def test_sab_pma_row_is_the_authors_small_set_transformer() -> None:
    model = build_model("sab-pma")
    assert isinstance(model, SetTransformerRegressor)
    network = model.network
    assert isinstance(network, SetTransformer)
    assert len(network.encoder) == 2 and len(network.decoder) == 0
    assert network.pool.num_seeds == 1 and network.head.out_features == 1
    # MAB = fc_q, fc_k, fc_v (input → 64) and fc_o (64 → 64); no LayerNorm.
    # SAB(1, 64) + SAB(64, 64) + PMA(64) with one seed vector + head Linear(64, 1)
    sab1 = 3 * _linear_count(1, 64) + _linear_count(64, 64)
    sab2 = 4 * _linear_count(64, 64)
    pma = 4 * _linear_count(64, 64) + 64
    expected = sab1 + sab2 + pma + _linear_count(64, 1)
    assert parameter_count(model) == expected


@pytest.mark.parametrize("row", ["rff-mean", "rff-sum", "rff-max", "sab-pma"])
def test_every_row_is_invariant_and_answers_one_number_per_set(row: str) -> None:
    torch.manual_seed(0)
    model = build_model(row, width=8).double().eval()
    x = torch.rand(4, 10, 1, dtype=torch.float64) * 100
    mask = torch.arange(10) < torch.tensor([[1], [4], [10], [7]])
    assert model(x, mask).shape == (4, 1)
    assert_invariant(model, x, mask)


def test_unknown_row_names_the_choices() -> None:
    with pytest.raises(ValueError, match="row must be one of 'rff-mean'"):
        build_model("mlp")
    assert isinstance(build_model("rff-max", width=8).phi[0], nn.Linear)
