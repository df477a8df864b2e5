"""Draw the weight-sharing patterns shown on docs/explanation/weight-sharing.md.

Every picture is a dense equivariant matrix coloured by the parameter that fills each
entry (white: structurally zero), computed from the library's intertwiner bases:

    python scripts/weight_sharing_figures.py [--out docs/assets/weight-sharing]

Needs matplotlib (the ``train`` extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from deepsets.equivariance import (
    CyclicAction,
    EquivariantLinear,
    ProductAction,
    SymmetricAction,
    TrivialAction,
    parameter_ids,
    plot_weight_sharing,
)

S = SymmetricAction

FIGURES: dict[str, tuple[str, EquivariantLinear]] = {
    "first-order-n8": (
        "S8, sets → sets",
        EquivariantLinear(S(8), S(8), bias=False),
    ),
    "second-order-n5": (
        "S5, edges → edges",
        EquivariantLinear(S(5, 2), S(5, 2), bias=False),
    ),
    "product-s3-s4": (
        "S3 × S4",
        EquivariantLinear(ProductAction(S(3), S(4)), ProductAction(S(3), S(4)), bias=False),
    ),
    "product-s2-s3-s4": (
        "S2 × S3 × S4",
        EquivariantLinear(
            ProductAction(S(2), S(3), S(4)), ProductAction(S(2), S(3), S(4)), bias=False
        ),
    ),
    "circulant-n8": (
        "C8, shifts → shifts",
        EquivariantLinear(CyclicAction(8), CyclicAction(8), bias=False),
    ),
    "invariant-projection": (
        "C12 → 3 invariant scalars",
        EquivariantLinear(CyclicAction(12), TrivialAction(), 1, 3, bias=False),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/assets/weight-sharing"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (label, layer) in FIGURES.items():
        ids = parameter_ids(layer)
        rows, cols = ids.shape
        scale = 3.2 / max(rows, cols)
        fig, ax = plt.subplots(figsize=(max(1.2, cols * scale) + 0.4, rows * scale + 0.6))
        count = layer.weight.numel()
        plot_weight_sharing(
            layer, ax=ax, title=f"{label}\n{count} parameters, {ids.numel()} entries"
        )
        fig.tight_layout()
        path = args.out / f"{name}.png"
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
        print(f"{path}: {rows} x {cols}, {count} parameters")


if __name__ == "__main__":
    main()
