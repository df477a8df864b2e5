"""Deprecated: moved to :mod:`deepsets.experiments.power_spectrum.config`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments.power_spectrum.config import (
    PRESETS,
    PowerSpectrumConfig,
    Preset,
    add_config_arguments,
    config_from_args,
    load_config_file,
)

__all__ = [
    "PRESETS",
    "PowerSpectrumConfig",
    "Preset",
    "add_config_arguments",
    "config_from_args",
    "load_config_file",
]

warnings.warn(
    "deepsets.study.config is deprecated and will be removed; "
    "import from deepsets.experiments.power_spectrum.config instead",
    DeprecationWarning,
    stacklevel=2,
)
