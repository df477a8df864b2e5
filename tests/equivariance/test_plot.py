"""Weight-sharing pictures: the parameter behind every dense entry, and the drawing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from deepsets.equivariance import (
    CyclicAction,
    EquivariantLinear,
    ProductAction,
    SymmetricAction,
    TrivialAction,
    common_group,
    intertwiner_basis,
    parameter_ids,
    plot_weight_sharing,
)

S = SymmetricAction


@pytest.mark.parametrize(
    ("in_action", "out_action", "count", "shape"),
    [
        (S(8), S(8), 2, (8, 8)),  # Deep Sets: the diagonal and the rest
        (S(5, 2), S(5, 2), 15, (25, 25)),  # 625 entries, 15 parameters
        (ProductAction(S(3), S(4)), ProductAction(S(3), S(4)), 4, (12, 12)),
        (ProductAction(S(2), S(3), S(4)), ProductAction(S(2), S(3), S(4)), 8, (24, 24)),
        (CyclicAction(8), CyclicAction(8), 8, (8, 8)),  # circulant
    ],
    ids=["first-order", "second-order", "S3xS4", "S2xS3xS4", "circulant"],
)
def test_parameter_ids_of_the_seeds_patterns(in_action, out_action, count, shape) -> None:
    ids = parameter_ids(EquivariantLinear(in_action, out_action))
    assert ids.shape == shape
    assert sorted(ids.unique().tolist()) == list(range(count))  # every entry has a parameter
    # Two entries share a parameter exactly when the group maps one onto the other.
    g = common_group(in_action, out_action).random_element(
        generator=torch.Generator().manual_seed(0)
    )
    moved = ids[out_action.index(g)][:, in_action.index(g)]
    assert torch.equal(moved, ids)


def test_first_order_ids_are_the_diagonal_and_the_rest() -> None:
    ids = parameter_ids(EquivariantLinear(S(8), S(8)))
    eye = torch.eye(8, dtype=torch.bool)
    assert ids[eye].unique().numel() == 1 and ids[~eye].unique().numel() == 1
    assert ids[0, 0] != ids[0, 1]


def test_circulant_rows_are_shifted_copies() -> None:
    ids = parameter_ids(EquivariantLinear(CyclicAction(6), CyclicAction(6)))
    for i in range(1, 6):
        assert torch.equal(ids[i], torch.roll(ids[0], i))


def test_invariant_projection_has_one_parameter_per_output() -> None:
    """Three sum-pooling maps of a cyclic signal: a 3 × N matrix, constant along each row."""
    layer = EquivariantLinear(CyclicAction(10), TrivialAction(), 1, 3)
    ids = parameter_ids(layer)
    assert ids.shape == (3, 10)
    assert all(ids[c].unique().numel() == 1 for c in range(3))
    assert ids[:, 0].unique().numel() == 3
    assert layer.weight.numel() == 3


def test_channels_get_their_own_parameters() -> None:
    layer = EquivariantLinear(S(4), S(4), 2, 3)  # 3 · 2 · 2 weights
    ids = parameter_ids(layer)
    assert ids.shape == (4 * 3, 4 * 2)
    assert ids.unique().numel() == layer.weight.numel() == 12
    # The dense weight holds weight.flatten()[id] at every entry (bias aside).
    assert torch.equal(layer.weight.detach().flatten()[ids], layer.expand_parameters().detach())


def test_a_basis_tensor_works_and_zero_entries_are_marked() -> None:
    basis = intertwiner_basis(S(3), S(3))
    assert torch.equal(parameter_ids(basis), parameter_ids(EquivariantLinear(S(3), S(3))))
    sparse = torch.zeros(1, 2, 2)
    sparse[0, 0, 0] = 1
    assert parameter_ids(sparse).tolist() == [[0, -1], [-1, -1]]
    with pytest.raises(TypeError, match="layer_or_basis"):
        parameter_ids(torch.zeros(3, 3))


def test_plot_draws_one_colour_per_parameter() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer = EquivariantLinear(S(5, 2), S(5, 2))
    ax = plot_weight_sharing(layer)
    image = ax.get_images()[0]
    assert image.get_array().shape == (25, 25)
    colours = {tuple(c) for c in image.to_rgba(image.get_array()).reshape(-1, 4).tolist()}
    assert len(colours) == 15
    assert "15 parameters" in ax.get_title() and "625" in ax.get_title()
    _fig, axes = plt.subplots(1, 2)
    assert plot_weight_sharing(intertwiner_basis(S(4), S(4)), ax=axes[1], title="x") is axes[1]
    assert axes[1].get_title() == "x"
    plt.close("all")


def test_the_package_imports_without_matplotlib() -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import deepsets, deepsets.equivariance as eq\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "layer = eq.EquivariantLinear(eq.SymmetricAction(3), eq.SymmetricAction(3))\n"
        "try:\n"
        "    eq.plot_weight_sharing(layer)\n"
        "except ImportError as error:\n"
        "    assert 'matplotlib' in str(error)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
