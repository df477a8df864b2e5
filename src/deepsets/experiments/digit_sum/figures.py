"""The figure of the digit-sum experiment: exact-sum accuracy against set size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._common import save_figure

__all__ = ["draw_figure"]


def draw_figure(metrics: dict[str, Any], directory: Path) -> str | None:
    """Draw ``figures/accuracy.{png,svg}`` into ``directory``; returns the PNG's path
    relative to the run directory, or ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    directory.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for variant, result in metrics["variants"].items():
        sizes = [int(n) for n in result["accuracy"]]
        ax.plot(sizes, list(result["accuracy"].values()), label=variant)
    ax.axvspan(0, metrics["max_train_size"], color="0.9", label="training sizes")
    ax.set_xlabel("set size (digits)")
    ax.set_ylabel("exact-sum accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Sum of digits: trained on ≤ {metrics['max_train_size']} digits")
    ax.legend(loc="center right")
    ax.grid(alpha=0.3)
    return save_figure(plt, fig, directory, "accuracy", dpi=120)
