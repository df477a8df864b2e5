"""Figures of the amortized-clustering experiment (matplotlib, PNG and SVG).

1. ``ll-bars``: test log-likelihood per data point of every network (mean ± std over
   random seeds, every seed a dot) beside Table 3 of the Set Transformer paper, with the
   oracle as the ceiling;
2. ``example``: one test dataset with the true mixture and each network's fitted mixture
   (first random seed), every component drawn as its 2σ circle, line width ∝ its weight.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .._common import save_figure
from .config import PAPER_LL, ClusteringConfig
from .data import ARCHITECTURES, MixtureBatch

__all__ = ["draw_figures"]


def draw_figures(
    metrics: dict[str, Any],
    config: ClusteringConfig,
    directory: str | Path,
    dataset: MixtureBatch,
) -> dict[str, str]:
    """Draw both figures into ``directory`` (``dataset``: the one-set batch of figure 2).

    Returns:
        ``{"ll_bars": "figures/ll-bars.png", "example": "figures/example.png"}`` (PNG
        paths relative to the run directory; an SVG lies beside each), or ``{}`` without
        matplotlib.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        return {}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}
    for key, stem, figure in (
        ("ll_bars", "ll-bars", _bars(plt, metrics)),
        ("example", "example", _example(plt, metrics, dataset)),
    ):
        drawn[key] = save_figure(plt, figure, directory, stem)
    return drawn


def _bars(plt: Any, metrics: dict[str, Any]) -> Any:
    rows = metrics["rows"]
    names = list(rows)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, name in enumerate(names):
        row, (paper, spread) = rows[name], PAPER_LL[name]
        seeds = [r["test_ll"] for r in metrics["runs"] if r["architecture"] == name]
        ours_label = f"ours ({metrics['preset']}), mean ± sd" if i == 0 else None
        ax.errorbar(i - 0.12, row["mean"], yerr=row["std"], fmt="o", color="tab:blue",
                    capsize=4, label=ours_label)  # fmt: skip
        ax.plot([i - 0.12] * len(seeds), seeds, "k.", markersize=3,
                label="ours, every random seed" if i == 0 else None)  # fmt: skip
        ax.errorbar(i + 0.12, paper, yerr=spread or 0.0, fmt="s", color="tab:gray",
                    capsize=4, label="paper (Table 3)" if i == 0 else None)  # fmt: skip
    ax.axhline(metrics["oracle_ll"], color="tab:green", ls="--", label="oracle (ours)")
    ax.axhline(PAPER_LL["oracle"][0], color="tab:green", ls=":", label="oracle (paper)")
    ax.set_xticks(range(len(names)), [ARCHITECTURES[n] for n in names])
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel("test log-likelihood per point")
    ax.set_title("Amortized clustering, mixture of 4 Gaussians (higher is better)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _circles(ax: Any, weights: list[float], means: list[list[float]], sigma: list[float]) -> None:
    from matplotlib.patches import Circle

    for w, (mx, my), s in zip(weights, means, sigma, strict=True):
        ax.add_patch(Circle((mx, my), 2 * s, fill=False, color="tab:red", lw=0.5 + 3 * w))


def _example(plt: Any, metrics: dict[str, Any], dataset: MixtureBatch) -> Any:
    first: dict[str, dict[str, Any]] = {}
    for run in metrics["runs"]:
        first.setdefault(run["architecture"], run)
    panels = [("truth (oracle)", None), *((ARCHITECTURES[a], r) for a, r in first.items())]
    columns = min(len(panels), 4)
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    points = dataset.x[0, : int(dataset.sizes[0])]
    truth = dataset.truth
    for ax, (title, run) in zip(axes.flat, panels, strict=False):
        ax.scatter(points[:, 0], points[:, 1], s=2, color="0.4")
        if run is None:
            mixture = truth.log_weights[0].exp().tolist(), truth.means[0].tolist()
            _circles(ax, *mixture, truth.sigma[0].tolist())
        else:
            fit = run["example_mixture"]
            _circles(ax, fit["weights"], fit["means"], fit["sigma"])
            title = f"{title}\nLL {run['test_ll']:.3f} (test mean)"
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-5, 5)
        ax.set_ylim(-5, 5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return fig
