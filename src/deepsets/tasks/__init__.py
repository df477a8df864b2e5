"""Deprecated: moved to :mod:`deepsets.experiments`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

__all__: list[str] = []

warnings.warn(
    "deepsets.tasks is deprecated and will be removed; import from deepsets.experiments instead",
    DeprecationWarning,
    stacklevel=2,
)
