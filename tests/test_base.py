"""The set-module base: constructor arguments recorded, ``pool_type``, one forward preamble."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import torch
from torch import Tensor

import deepsets
from deepsets import (
    DeepSetsConditional,
    DeepSetsEquivariant,
    DeepSetsInvariant,
    PermutationEquivariantLayer,
    pack_sets,
)
from deepsets._base import SetModule
from deepsets._validation import PoolType


def test_config_is_recorded_from_the_constructor_arguments() -> None:
    """The dicts each class once built by hand, now recorded by the base."""
    model = DeepSetsInvariant(3, (8, 4), [5], 2, pool_type=PoolType.MAX)
    assert model.config == {
        "input_dim": 3,
        "phi_hidden_dims": [8, 4],
        "rho_hidden_dims": [5],
        "output_dim": 2,
        "pool_type": "max",
        "dropout": 0.0,
    }
    assert DeepSetsEquivariant(3, [4], 2, final_pool="sum").config == {
        "input_dim": 3,
        "hidden_dims": [4],
        "output_dim": 2,
        "pool_type": "max",
        "final_pool": "sum",
        "dropout": 0.0,
    }
    conditional = DeepSetsConditional(3, 2, [6], [], 1, fusion_type="film")
    assert conditional.config["fusion_type"] == "film"
    assert conditional.config["context_in_rho"] is True
    layer = PermutationEquivariantLayer(3, 4, "mean")
    assert layer.config == {"input_dim": 3, "output_dim": 4, "pool_type": "mean"}


@pytest.mark.parametrize(
    "model",
    [
        DeepSetsInvariant(3, [4], [4], 1, pool_type="mean"),
        DeepSetsEquivariant(3, [4], 2, pool_type="sum"),
        DeepSetsConditional(3, 2, [4], [4], 1, pool_type="max"),
        PermutationEquivariantLayer(3, 4, "sum"),
    ],
)
def test_every_set_module_shares_the_base(model: SetModule) -> None:
    assert isinstance(model, SetModule)
    assert model.pool_type == model.pool.value == model.config["pool_type"]
    assert "pool_type" not in type(model).__dict__  # provided once, by the base


def test_a_subclass_records_its_own_arguments_and_round_trips(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")

    class Small(DeepSetsInvariant):
        def __init__(self, width: int = 4) -> None:
            super().__init__(3, [width], [width], 1, pool_type="max")

    model = Small(width=5)
    assert model.config == {"width": 5}
    again = Small.from_pretrained(model.save_pretrained(tmp_path))
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(again(x), model(x))


def test_the_preamble_checks_then_dispatches_by_input_form() -> None:
    model = DeepSetsConditional(3, 2, [4], [4], 1)
    x, context = torch.randn(2, 5, 3), torch.randn(2, 2)
    with pytest.raises(ValueError, match="x must have 3 features"):
        model(torch.randn(2, 5, 4), context)
    with pytest.raises(ValueError, match=r"context must have shape \(B, context_dim\)"):
        model(x, torch.randn(2, 3))
    with pytest.raises(ValueError, match="mask must have shape"):
        model(x, context, torch.ones(2, 4, dtype=torch.bool))
    sets = [x[0], x[1, :2]]
    packed: Tensor = pack_sets(sets)
    padded_mask = torch.tensor([[True] * 5, [True, True] + [False] * 3])
    torch.testing.assert_close(model(packed, context), model(x, context, padded_mask))


def test_one_version_source() -> None:
    try:
        expected = importlib.metadata.version("deepsets")
    except importlib.metadata.PackageNotFoundError:
        expected = "0+unknown"
    assert deepsets.__version__ == expected
