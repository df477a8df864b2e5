"""The ``deepsets`` command line (also ``python -m deepsets``).

One sub-command per experiment of the registry :data:`deepsets.experiments.EXPERIMENTS`,
e.g. ``deepsets power-spectrum --preset quick|paper [--out DIR] [--resume]
[--config FILE] [--setting value …]`` and ``deepsets digit-sum …``; ``deepsets --help``
lists them all. Each sub-command's flags come from its experiment's settings dataclass;
its settings resolve as preset < ``--config`` file < flags.

The experiments need the ``train`` extra. On Linux with glibc the command restarts itself
once with ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set (see
:func:`deepsets.experiments._common.restart_with_malloc_settings`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .experiments import EXPERIMENTS, Experiment
from .experiments._common import (
    MALLOC_SETTINGS,
    quiet_torch_notices,
    restart_with_malloc_settings,
)

__all__ = ["MALLOC_SETTINGS", "add_experiment_parser", "build_parser", "main"]


def add_experiment_parser(subparsers: Any, experiment: Experiment) -> argparse.ArgumentParser:
    """Add ``experiment``'s sub-command (its flags, and ``func`` that runs it) to
    ``subparsers`` (from ``parser.add_subparsers()``)."""
    from .experiments._config import add_config_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        experiment.name, help=experiment.help, description=experiment.description
    )
    add_config_arguments(parser, experiment.config_class(), experiment.preset_table())

    def run(args: argparse.Namespace) -> int:
        return run_experiment(experiment, args)

    parser.set_defaults(func=run)
    return parser


def run_experiment(experiment: Experiment, args: argparse.Namespace) -> int:
    """Resolve the settings of ``args``, run ``experiment`` and print its summary.

    Returns 0, or 2 (with a message naming the setting on stderr) for bad settings.
    """
    from .experiments._config import config_from_args

    try:
        config = config_from_args(args, experiment.config_class(), experiment.preset_table())
    except (ValueError, TypeError, OSError) as error:
        print(f"deepsets {experiment.name}: error: {error}", file=sys.stderr)
        return 2
    quiet_torch_notices()
    metrics = experiment.run_function()(config)
    text = experiment.summary_function()(metrics, config)
    if text:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``deepsets`` parser with one sub-command per registered experiment."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="deepsets", description="Deep Sets experiments: train, evaluate, report."
    )
    parser.add_argument("--version", action="version", version=f"deepsets {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for experiment in EXPERIMENTS:
        add_experiment_parser(subparsers, experiment)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad flags or settings exit with status 2 and a message naming the setting.
    """
    if argv is None:
        restart_with_malloc_settings()
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    return int(args.func(args))
