"""Settings of the digit-sum experiment: one dataclass; each field is also a flag and a
config-file entry (``--config`` file < flags; the experiment has no presets)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ..._settings import setting
from .._config import ExperimentConfig
from .._config import config_from_args as _config_from_args
from .data import VARIANTS, Variant

__all__ = ["VARIANT_DEFAULTS", "DigitSumConfig", "config_from_args"]

#: Per-variant defaults of φ's widths, steps and peak learning rate.
VARIANT_DEFAULTS: dict[Variant, dict[str, Any]] = {
    Variant.INTEGER: {"phi_hidden_dims": [32], "steps": 600, "lr": 3e-2},
    Variant.IMAGE: {"phi_hidden_dims": [128, 64], "steps": 5000, "lr": 1e-2},
}


@dataclass
class DigitSumConfig(ExperimentConfig):
    """Every setting of ``deepsets digit-sum`` (each is also a flag and a config entry).

    Attributes:
        variants: which variants to run, from ``"integer"`` and ``"image"``.
        out: the run directory.
        seed: the random seed of the model's initialisation, the training stream and the
            test sets.
        steps: optimiser steps; ``None`` takes the variant's default (600 integer,
            5000 image).
        batch_size: sets per step (per DDP process).
        max_train_size: training sets have ``0..max_train_size`` digits.
        max_test_size: accuracy is measured at every size ``1..max_test_size``.
        test_sets: test sets per size.
        lr: peak one-cycle learning rate; ``None`` takes the variant's default.
        phi_hidden_dims: φ's widths; ``None`` takes the variant's default
            (``[32]`` integer, ``[128, 64]`` image).
        resume: continue interrupted training from the checkpoints in ``out``.
        threads: torch CPU threads during the run (restored afterwards). The models are
            tiny, and on a busy machine one thread is many times faster than several;
            ``None`` keeps torch's setting.
        engine: Lightning settings (see :class:`deepsets.training.EngineSettings`),
            as a dict of its fields.
    """

    variants: list[str] = setting(
        default_factory=lambda: list(VARIANTS),
        help=f"one of {', '.join(VARIANTS)}; repeat for several (default: both)",
        flag="--variant",
        append=True,
        choices=Variant,
        nonempty=True,
    )
    out: str = setting("runs/digit-sum", help="run directory (runs/digit-sum)")
    seed: int = setting(0, help="random seed of the model, data and test sets (0)")
    steps: int | None = setting(None, help="600 integer, 5000 image", minimum=1)
    batch_size: int = setting(128, help="sets per step (128)", minimum=1)
    max_train_size: int = setting(10, help="training sets hold 0..this many digits (10)", minimum=1)
    max_test_size: int = setting(100, help="accuracy at every set size 1..this (100)", minimum=1)
    test_sets: int = setting(1000, help="sets per size (1000)", minimum=1)
    lr: float | None = setting(None, help="peak LR (3e-2 integer, 1e-2 image)", above=0)
    phi_hidden_dims: list[int] | None = setting(
        None, help="widths of phi ([32] integer, [128, 64] image)", minimum=1
    )
    resume: bool = setting(
        False, help="continue from the checkpoints in --out (exactly where the run stopped)"
    )
    threads: int | None = setting(
        1, help="torch CPU threads (1; 0 = torch's choice)", minimum=1, zero_is_none=True
    )
    engine: dict[str, Any] = setting(
        default_factory=dict, help="Lightning settings (EngineSettings fields)", cli=False
    )

    def resolved(self, variant: str) -> dict[str, Any]:
        """The training settings of ``variant`` with the variant defaults filled in."""
        defaults = VARIANT_DEFAULTS[Variant(variant)]
        return {
            "steps": self.steps if self.steps is not None else defaults["steps"],
            "lr": float(self.lr if self.lr is not None else defaults["lr"]),
            "phi_hidden_dims": list(
                self.phi_hidden_dims
                if self.phi_hidden_dims is not None
                else defaults["phi_hidden_dims"]
            ),
        }


def config_from_args(args: argparse.Namespace) -> DigitSumConfig:
    """The :class:`DigitSumConfig` of parsed ``digit-sum`` flags (and ``--config``)."""
    return _config_from_args(args, DigitSumConfig)
