"""Experiments the library ships as commands, one folder each, all with the same shape.

Every experiment is a package ``deepsets.experiments.<name>`` with the modules ``config``
(settings dataclass + presets), ``data``, ``model``, ``baselines`` (where there are any),
``evaluate``, ``report``, ``figures`` and ``run`` (the driver), built on the shared
scaffold in ``_config`` (preset < config file < flags, field checks), ``_common`` (seeding,
threads, run directory, malloc restart) and ``_pool`` (runs in worker processes).

:data:`EXPERIMENTS` is the registry the command line loops over: adding an experiment
means adding its folder and one :class:`Experiment` line here. Entries name their parts
as ``"module:attribute"`` strings, imported on first use, so ``deepsets --help`` and
``import deepsets`` import no experiment (and no Lightning).

Needs the ``train`` extra: ``pip install "deepsets[train]"``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["EXPERIMENTS", "Experiment", "get_experiment"]


def _load(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


@dataclass(frozen=True)
class Experiment:
    """One experiment of the command line.

    Attributes:
        name: the sub-command (``deepsets <name>``).
        help: one line for ``deepsets --help``.
        description: the sub-command's ``--help`` text.
        config: ``"module:Class"`` of the settings dataclass (an
            :class:`~deepsets.experiments._config.ExperimentConfig`).
        run: ``"module:function"`` that runs a config and returns its metrics.
        summary: ``"module:function"`` of ``(metrics, config) -> str | None``: what the
            command prints at the end (``None``: nothing, e.g. off DDP rank 0).
        presets: ``"module:PRESETS"`` of the named starting points, or ``None``.
    """

    name: str
    help: str
    description: str
    config: str
    run: str
    summary: str
    presets: str | None = None

    def config_class(self) -> Any:
        """The settings dataclass (imports the experiment's ``config`` module)."""
        return _load(self.config)

    def preset_table(self) -> Any:
        """The presets (``None`` when the experiment has none)."""
        return _load(self.presets) if self.presets else None

    def run_function(self) -> Any:
        """The driver (imports the experiment's ``run`` module and Lightning)."""
        return _load(self.run)

    def summary_function(self) -> Any:
        """The end-of-run printer."""
        return _load(self.summary)


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        name="power-spectrum",
        help="estimate power spectra of random functions from unordered samples",
        description=(
            "Train permutation-invariant networks to estimate the power spectrum of random "
            "periodic functions from N unordered samples, compare them with the prior and "
            "a least-squares Fourier fit, draw figures 1-5 and write report.md and "
            "metrics.json into --out. Settings: preset < --config file < flags."
        ),
        config="power_spectrum.config:PowerSpectrumConfig",
        presets="power_spectrum.config:PRESETS",
        run="power_spectrum.run:run_power_spectrum",
        summary="power_spectrum.run:summary",
    ),
    Experiment(
        name="digit-sum",
        help="sum of digits: train on sets of <= 10 digits, test up to 100",
        description=(
            "Train a sum-pooled Deep Sets model to add up sets of digits (integers or "
            "8x8 images) and report exact-sum accuracy per set size. "
            "Settings: --config file < flags."
        ),
        config="digit_sum.config:DigitSumConfig",
        run="digit_sum.run:run_digit_sum",
        summary="digit_sum.run:summary",
    ),
    Experiment(
        name="max-regression",
        help="Set Transformer Table 1: predict the max of a set (Deep Sets vs SAB + PMA)",
        description=(
            "Train Deep Sets (mean, sum, max pooling) and SAB + PMA to predict the largest "
            "of 1..10 numbers, several random seeds each, and put the test MAE beside the "
            "Set Transformer paper's Table 1 in report.md, metrics.json and a figure in "
            "--out. Settings: preset < --config file < flags."
        ),
        config="max_regression.config:MaxRegressionConfig",
        presets="max_regression.config:PRESETS",
        run="max_regression.run:run_max_regression",
        summary="max_regression.run:summary",
    ),
    Experiment(
        name="clustering",
        help="amortized clustering: output a 4-Gaussian mixture's parameters (Set Transformer)",
        description=(
            "Train rFF + pooling, rFFp-mean + pooling and ISAB(16) + PMA to output the "
            "parameters of the mixture of 4 Gaussians a 2-D dataset was drawn from (Set "
            "Transformer paper, Table 3), score the log-likelihood per point against the "
            "oracle, and write report.md, metrics.json and figures into --out. "
            "Settings: preset < --config file < flags."
        ),
        config="clustering.config:ClusteringConfig",
        presets="clustering.config:PRESETS",
        run="clustering.run:run_clustering",
        summary="clustering.run:summary",
    ),
)


def get_experiment(name: str) -> Experiment:
    """The registered experiment called ``name`` (its command name)."""
    for experiment in EXPERIMENTS:
        if experiment.name == name:
            return experiment
    choices = ", ".join(repr(e.name) for e in EXPERIMENTS)
    raise ValueError(f"experiment must be one of {choices}; got {name!r}")
