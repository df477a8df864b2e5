"""Studies the library ships as commands: the power-spectrum study of ``deepsets
power-spectrum`` (settings, driver, figures, report).

Needs the ``train`` extra: ``pip install "deepsets[train]"``.
"""

from .config import PRESETS, PowerSpectrumConfig, load_config_file
from .power_spectrum import build_model, parameter_comparison, run_power_spectrum
from .report import size_sweep_ratio

__all__ = [
    "PRESETS",
    "PowerSpectrumConfig",
    "build_model",
    "load_config_file",
    "parameter_comparison",
    "run_power_spectrum",
    "size_sweep_ratio",
]
