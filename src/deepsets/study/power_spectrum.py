"""Deprecated: moved to :mod:`deepsets.experiments.power_spectrum.run`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments.power_spectrum.baselines import PRIOR_MSE
from ..experiments.power_spectrum.model import build_model, parameter_comparison
from ..experiments.power_spectrum.run import run_power_spectrum

__all__ = ["PRIOR_MSE", "build_model", "parameter_comparison", "run_power_spectrum"]

warnings.warn(
    "deepsets.study.power_spectrum is deprecated and will be removed; "
    "import from deepsets.experiments.power_spectrum.run instead",
    DeprecationWarning,
    stacklevel=2,
)
