"""Deprecated: moved to :mod:`deepsets.experiments.power_spectrum`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments.power_spectrum.config import PRESETS, PowerSpectrumConfig, load_config_file
from ..experiments.power_spectrum.model import build_model, parameter_comparison
from ..experiments.power_spectrum.report import size_sweep_ratio
from ..experiments.power_spectrum.run import run_power_spectrum

__all__ = [
    "PRESETS",
    "PowerSpectrumConfig",
    "build_model",
    "load_config_file",
    "parameter_comparison",
    "run_power_spectrum",
    "size_sweep_ratio",
]

warnings.warn(
    "deepsets.study is deprecated and will be removed; "
    "import from deepsets.experiments.power_spectrum instead",
    DeprecationWarning,
    stacklevel=2,
)
