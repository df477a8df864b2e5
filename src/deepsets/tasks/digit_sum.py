"""Deprecated: moved to :mod:`deepsets.experiments.digit_sum`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings
from typing import Any

from ..experiments.digit_sum.config import VARIANT_DEFAULTS, DigitSumConfig, config_from_args
from ..experiments.digit_sum.data import (
    VARIANTS,
    DigitImages,
    Variant,
    load_digit_images,
    sample_digit_sets,
)
from ..experiments.digit_sum.evaluate import evaluate_accuracy
from ..experiments.digit_sum.model import build_model
from ..experiments.digit_sum.run import run_digit_sum

__all__ = [
    "VARIANTS",
    "VARIANT_DEFAULTS",
    "DigitImages",
    "DigitSumConfig",
    "Variant",
    "add_subparser",
    "build_model",
    "config_from_args",
    "evaluate_accuracy",
    "load_digit_images",
    "run_digit_sum",
    "sample_digit_sets",
]


def add_subparser(subparsers: Any) -> Any:
    """Register ``digit-sum`` on a ``parser.add_subparsers()`` object; sets ``func``."""
    from ..cli import add_experiment_parser
    from ..experiments import get_experiment

    return add_experiment_parser(subparsers, get_experiment("digit-sum"))


warnings.warn(
    "deepsets.tasks.digit_sum is deprecated and will be removed; "
    "import from deepsets.experiments.digit_sum instead",
    DeprecationWarning,
    stacklevel=2,
)
