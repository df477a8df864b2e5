"""Deprecated: moved to :mod:`deepsets.experiments.power_spectrum.report`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments.power_spectrum.report import size_sweep_ratio, write_report

__all__ = ["size_sweep_ratio", "write_report"]

warnings.warn(
    "deepsets.study.report is deprecated and will be removed; "
    "import from deepsets.experiments.power_spectrum.report instead",
    DeprecationWarning,
    stacklevel=2,
)
