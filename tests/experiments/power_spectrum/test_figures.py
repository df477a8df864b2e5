"""Figures 1–5 of the power-spectrum experiment are drawn as PNG and SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_all_seven_figures(tiny_study: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = tiny_study
    assert sorted(metrics["figures"]) == ["fig1", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7"]
    for path in metrics["figures"].values():
        png = out / path
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
