"""Deprecated: moved to :mod:`deepsets.experiments._config`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments._config import read_config_file

__all__ = ["read_config_file"]

warnings.warn(
    "deepsets.tasks._config_files is deprecated and will be removed; "
    "import from deepsets.experiments._config instead",
    DeprecationWarning,
    stacklevel=2,
)
