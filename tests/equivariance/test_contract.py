"""The contract every equivariant layer meets: ``weight_numel``, ``export``, save/load,
``input_dim``/``output_dim`` (old names warn), and equivariance itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from deepsets import PermutationEquivariantLayer
from deepsets.equivariance import (
    CyclicAction,
    CyclicConvLayer,
    EquivariantLinear,
    ExchangeableLayer,
    GroupAction,
    ProductAction,
    SecondOrderEquivariantLayer,
    SymmetricAction,
)
from deepsets.equivariance.contract import EquivariantModule
from deepsets.testing import equivariance_error

C_IN, C_OUT = 2, 3


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    size: Any  # the export size
    shape: tuple[int, ...]  # one input without the batch axis
    numel: int  # trainable parameters, from the layer's documented formula
    action: GroupAction | None  # None: per-set permutations of dimension 1
    out_action: GroupAction | None = None


CASES: dict[str, Case] = {
    "linear-sets": Case(
        lambda: EquivariantLinear(SymmetricAction(4), SymmetricAction(4), C_IN, C_OUT),
        None,
        (4, C_IN),
        C_OUT * C_IN * 2 + C_OUT,  # K = 2 (identity, all-ones), one invariant bias vector
        SymmetricAction(4),
    ),
    "linear-edges": Case(
        lambda: EquivariantLinear(SymmetricAction(4), SymmetricAction(4, 2), C_IN, C_OUT),
        None,
        (4, C_IN),
        C_OUT * C_IN * 5 + C_OUT * 2,  # B(3) = 5 maps, bias on and off the diagonal
        SymmetricAction(4),
        SymmetricAction(4, 2),
    ),
    "second-order-sum": Case(
        lambda: SecondOrderEquivariantLayer(C_IN, C_OUT),
        5,
        (5, 5, C_IN),
        15 * C_IN * C_OUT + 2 * C_OUT,
        SymmetricAction(5, 2),
    ),
    "second-order-mean": Case(
        lambda: SecondOrderEquivariantLayer(C_IN, C_OUT, pool_type="mean", bias=False),
        4,
        (4, 4, C_IN),
        15 * C_IN * C_OUT,
        SymmetricAction(4, 2),
    ),
    "exchangeable": Case(
        lambda: ExchangeableLayer(C_IN, C_OUT),
        (3, 4),
        (3, 4, C_IN),
        4 * C_IN * C_OUT + C_OUT,
        ProductAction(SymmetricAction(3), SymmetricAction(4)),
    ),
    "cyclic": Case(
        lambda: CyclicConvLayer(6, C_IN, C_OUT),
        None,
        (6, C_IN),
        6 * C_IN * C_OUT + C_OUT,
        CyclicAction(6),
    ),
    "deep-sets-mean": Case(
        lambda: PermutationEquivariantLayer(C_IN, C_OUT, pool_type="mean"),
        5,
        (5, C_IN),
        2 * C_IN * C_OUT + C_OUT,
        None,
    ),
}


def _layer(case: Case) -> nn.Module:
    torch.manual_seed(0)
    layer = case.build()
    with torch.no_grad():  # a nonzero bias, so export must carry it
        for name, p in layer.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-1, 1)
    return layer


@pytest.mark.parametrize("name", CASES)
def test_every_equivariant_layer_meets_the_contract(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    layer = _layer(case)
    assert isinstance(layer, EquivariantModule)
    x = torch.randn(3, *case.shape)
    out = layer(x)

    # weight_numel: the documented formula, and what the optimiser sees
    assert layer.weight_numel == case.numel
    assert layer.weight_numel == sum(p.numel() for p in layer.parameters() if p.requires_grad)

    # export: a plain nn.Linear on the flattened input, equal outputs
    dense = layer.export(case.size)
    assert type(dense) is nn.Linear
    torch.testing.assert_close(dense(x.flatten(1)), out.flatten(1), atol=1e-5, rtol=1e-5)
    assert dense.weight.numel() >= layer.weight_numel

    # save / load: same class, same config, same function
    pytest.importorskip("safetensors")
    layer.save_pretrained(tmp_path)
    again = type(layer).from_pretrained(tmp_path)
    assert again.config == layer.config
    torch.testing.assert_close(again(x), out)

    # equivariance, measured
    options: dict[str, Any] = {"generator": torch.Generator().manual_seed(1)}
    if case.action is not None:
        options.update(in_action=case.action, out_action=case.out_action)
    assert equivariance_error(layer, x, **options) < 1e-5


def test_second_order_export_equals_the_dense_expansion_of_equivariant_linear() -> None:
    """Independent reference: EquivariantLinear expands the same orbit coordinates."""
    n = 4
    structured = SecondOrderEquivariantLayer(C_IN, C_OUT, bias=False)
    dense = EquivariantLinear(SymmetricAction(n, 2), SymmetricAction(n, 2), C_IN, C_OUT, False)
    with torch.no_grad():
        dense.weight.copy_(structured.weight)
    torch.testing.assert_close(
        structured.export(n).weight, dense.export().weight, atol=1e-6, rtol=1e-6
    )


def test_export_needs_a_fixed_size_and_a_linear_layer() -> None:
    with pytest.raises(ValueError, match=r"size must be 1 positive int\(s\), N"):
        SecondOrderEquivariantLayer(2, 2).export()
    with pytest.raises(ValueError, match=r"size must be 2 positive int\(s\)"):
        ExchangeableLayer(2, 2).export(3)
    with pytest.raises(ValueError, match="n = 6"):
        CyclicConvLayer(6, 2, 2).export(5)
    with pytest.raises(ValueError, match="size is fixed by in_action"):
        EquivariantLinear(SymmetricAction(3), SymmetricAction(3)).export(3)
    with pytest.raises(ValueError, match="'max' is not linear"):
        PermutationEquivariantLayer(2, 2, pool_type="max").export(4)


@pytest.mark.parametrize(
    "build",
    [
        lambda **kw: SecondOrderEquivariantLayer(**kw),
        lambda **kw: ExchangeableLayer(**kw),
        lambda **kw: CyclicConvLayer(5, **kw),
        lambda **kw: EquivariantLinear(SymmetricAction(3), SymmetricAction(3), **kw),
    ],
)
def test_channel_names_are_deprecated_aliases(build: Callable[..., nn.Module]) -> None:
    with pytest.warns(DeprecationWarning, match=r"in_channels=\.\.\.\) is deprecated"):
        old = build(in_channels=2, output_dim=3)
    new = build(input_dim=2, output_dim=3)
    assert old.config == new.config and "in_channels" not in old.config
    assert (old.input_dim, old.output_dim) == (2, 3)
    with pytest.warns(DeprecationWarning, match="out_channels is deprecated"):
        assert old.out_channels == 3
    with pytest.warns(DeprecationWarning, match="in_channels is deprecated"):
        assert old.in_channels == 2
    with pytest.raises(TypeError, match="both 'input_dim' and its deprecated alias"):
        build(in_channels=2, input_dim=2, output_dim=3)


def test_a_users_own_action_builds_but_cannot_be_saved(tmp_path: Path) -> None:
    class Mine(SymmetricAction):
        pass

    layer = EquivariantLinear(Mine(3), Mine(3))
    assert layer.weight_numel == 3  # K = 2 weights and one bias coordinate
    with pytest.raises(TypeError, match="not plain JSON"):
        layer.save_pretrained(tmp_path)
