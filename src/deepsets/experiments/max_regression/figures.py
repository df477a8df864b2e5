"""The figure of the max-regression experiment: test MAE per row, ours beside the paper's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._common import save_figure

__all__ = ["draw_figure"]


def draw_figure(metrics: dict[str, Any], directory: Path) -> str | None:
    """Draw ``figures/mae.{png,svg}`` into ``directory``: per row a bar of our mean MAE
    with a dot per random seed, beside the paper's mean with ± its spread (log scale).
    Returns the PNG's path relative to the run directory, or ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    rows = list(metrics["rows"].values())
    directory.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, row in enumerate(rows):
        ax.bar(i - 0.2, row["mae_mean"], width=0.38, color="C0", label="ours" if i == 0 else None)
        ax.scatter([i - 0.2] * len(row["mae_per_seed"]), row["mae_per_seed"], color="k", s=10,
                   zorder=3, label="ours, one random seed" if i == 0 else None)  # fmt: skip
        ax.bar(i + 0.2, row["paper_mean"], width=0.38, color="C1", yerr=row["paper_std"],
               capsize=3, label="paper (Table 1)" if i == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(rows)), [row["label"].replace(" (", "\n(") for row in rows])
    ax.set_yscale("log")
    ax.set_ylabel("test MAE (log scale)")
    ax.set_title(f"Max regression, {metrics['steps']:,} steps")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return save_figure(plt, fig, directory, "mae", dpi=120)
