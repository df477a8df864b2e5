"""The ``deepsets`` command line (also ``python -m deepsets``).

Subcommands:

* ``deepsets power-spectrum --preset quick|paper [--out DIR] [--resume] [--config FILE]
  [--setting value …]``: the power-spectrum study (:mod:`deepsets.study`);
* ``deepsets digit-sum …``: the sum-of-digits task (:mod:`deepsets.tasks.digit_sum`),
  when that module is installed.

Both need the ``train`` extra. On Linux with glibc the command restarts itself once with
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set (unless they are already
set, or ``DEEPSETS_MALLOC_TUNING=0``): glibc then stops returning the larger
activation buffers of a training step to the system after every step. On a quiet 2-core
machine this made a step of the quick power-spectrum model 13 % faster; a width-128
model on a busy machine with two threads ran twice as fast in one measurement. The
variables must be set before the process starts, hence the restart.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MALLOC_SETTINGS", "build_parser", "main"]

#: glibc malloc settings exported before the training process starts (bytes; the mmap
#: threshold must stay at or below glibc's 32 MiB maximum on 64-bit systems).
MALLOC_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": str(16 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 1024 * 1024),
}


def _add_power_spectrum(subparsers: Any) -> None:
    from .study.config import add_config_arguments

    parser = subparsers.add_parser(
        "power-spectrum",
        help="estimate power spectra of random functions from unordered samples",
        description=(
            "Train permutation-invariant networks to estimate the power spectrum of random "
            "periodic functions from N unordered samples, compare them with the prior and "
            "a least-squares Fourier fit, draw figures 1-5 and write report.md and "
            "metrics.json into --out. Settings: preset < --config file < flags."
        ),
    )
    add_config_arguments(parser)
    try:
        from .training import add_engine_arguments
    except ImportError:  # pragma: no cover - lightning missing
        pass
    else:
        add_engine_arguments(parser)
    parser.set_defaults(func=_run_power_spectrum)


def _run_power_spectrum(args: argparse.Namespace) -> int:
    from .study.config import config_from_args
    from .study.power_spectrum import run_power_spectrum
    from .study.report import size_sweep_ratio

    try:
        config = config_from_args(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"deepsets power-spectrum: error: {error}", file=sys.stderr)
        return 2
    metrics = run_power_spectrum(config)
    if not metrics.get("is_global_zero", True):
        return 0
    per_k = " / ".join(f"{v:.3f}" for v in metrics["per_k_mse"])
    ratio = size_sweep_ratio(metrics["size_sweep"], config.set_size)
    print(
        f"test_mse {metrics['test_mse']:.3f} ({metrics['headline_encoding']} encoding; "
        f"prior {metrics['prior_mse']:.3f}, least squares {metrics['lstsq_mse']:.4f})\n"
        f"per-k MSE {per_k}; size sweep max MSE(N)/MSE({config.set_size}) = {ratio:.3f}\n"
        f"{metrics['seconds']:.0f} s; report: {Path(config.out) / 'report.md'}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``deepsets`` parser with every available subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="deepsets", description="Deep Sets studies: train, evaluate, report."
    )
    parser.add_argument("--version", action="version", version=f"deepsets {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_power_spectrum(subparsers)
    if importlib.util.find_spec("deepsets.tasks.digit_sum") is not None:
        digit_sum = importlib.import_module("deepsets.tasks.digit_sum")
        digit_sum.add_subparser(subparsers)
    return parser


def _restart_with_malloc_settings() -> None:
    """Re-exec this command once with :data:`MALLOC_SETTINGS` in the environment."""
    if os.environ.get("DEEPSETS_MALLOC_TUNING", "1") == "0":
        return
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return
    missing = {k: v for k, v in MALLOC_SETTINGS.items() if k not in os.environ}
    if not missing:
        return
    env = {**os.environ, **missing}
    os.execve(sys.executable, [sys.executable, "-m", "deepsets", *sys.argv[1:]], env)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad flags or settings exit with status 2 and a message naming the setting.
    """
    if argv is None:
        _restart_with_malloc_settings()
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    return int(args.func(args))
