"""Deprecated: moved to :mod:`deepsets.experiments.power_spectrum.figures`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments.power_spectrum.figures import draw_figures

__all__ = ["draw_figures"]

warnings.warn(
    "deepsets.study.figures is deprecated and will be removed; "
    "import from deepsets.experiments.power_spectrum.figures instead",
    DeprecationWarning,
    stacklevel=2,
)
