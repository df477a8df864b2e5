"""Deprecated: moved to :mod:`deepsets.experiments.power_spectrum`.

This module re-exports the names and warns (DeprecationWarning) on import.
"""

import warnings

from ..experiments.power_spectrum.baselines import (
    EULER_GAMMA,
    least_squares_log_power,
    prior_log_power,
)
from ..experiments.power_spectrum.data import (
    ENCODINGS,
    Encoding,
    PowerSpectrumBatch,
    encode,
    evaluate_functions,
    fixed_spectra,
    make_stream_sampler,
    sample_at,
    sample_functions,
    sample_power_spectrum,
)
from ..experiments.power_spectrum.evaluate import evaluate_mse, squared_errors
from ..experiments.power_spectrum.model import (
    PowerSpectrumNet,
    dense_parameter_count,
    parameter_count,
)

__all__ = [
    "ENCODINGS",
    "EULER_GAMMA",
    "Encoding",
    "PowerSpectrumBatch",
    "PowerSpectrumNet",
    "dense_parameter_count",
    "encode",
    "evaluate_functions",
    "evaluate_mse",
    "fixed_spectra",
    "least_squares_log_power",
    "make_stream_sampler",
    "parameter_count",
    "prior_log_power",
    "sample_at",
    "sample_functions",
    "sample_power_spectrum",
    "squared_errors",
]

warnings.warn(
    "deepsets.tasks.power_spectrum is deprecated and will be removed; "
    "import from deepsets.experiments.power_spectrum instead",
    DeprecationWarning,
    stacklevel=2,
)
