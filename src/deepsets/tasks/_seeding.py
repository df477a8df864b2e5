"""Deprecated: moved to :mod:`deepsets.experiments._common`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments._common import generator_for, mix_seed

__all__ = ["generator_for", "mix_seed"]

warnings.warn(
    "deepsets.tasks._seeding is deprecated and will be removed; "
    "import from deepsets.experiments._common instead",
    DeprecationWarning,
    stacklevel=2,
)
