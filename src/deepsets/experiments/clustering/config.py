"""Settings of the amortized-clustering experiment: one dataclass and two presets.

Every setting is a field of :class:`ClusteringConfig`, a command-line flag
(``--field-name``) and a config-file entry (JSON, or TOML by the ``.toml`` suffix),
resolved preset < config file < flags (:mod:`deepsets.experiments._config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..._settings import setting
from .._config import ExperimentConfig
from .data import Architecture

__all__ = ["PAPER_LL", "PRESETS", "ClusteringConfig", "Preset"]

#: Table 3 of the Set Transformer paper: test log-likelihood per data point, mean and
#: standard deviation (``None``: not given) of the rows this experiment reproduces.
PAPER_LL: dict[str, tuple[float, float | None]] = {
    "oracle": (-1.4726, None),
    "rff": (-2.0006, 0.0123),
    "rffp_mean": (-1.7606, 0.0213),
    "isab_pma": (-1.5009, 0.0068),
}


class Preset(str, Enum):
    """Named starting points of :class:`ClusteringConfig`."""

    QUICK = "quick"
    PAPER = "paper"


@dataclass
class ClusteringConfig(ExperimentConfig):
    """Every setting of ``deepsets clustering`` (the field's help is its flag's help).

    Attributes:
        preset: the preset the other values started from (``quick`` or ``paper``).
        out: run directory (report, metrics, figures, checkpoints, logs).
        resume: continue interrupted training runs from their ``last.ckpt``.
        architectures: networks of Table 3 to train: ``rff`` (rFF + pooling),
            ``rffp_mean`` (rFFp-mean + pooling), ``isab_pma`` (ISAB(16) + PMA).
        seeds: random seeds of every network (initialisation and training stream).
        steps: optimiser steps per network.
        lr: Adam's learning rate until ``lr_drop_step``.
        lr_drop_step: step at which the learning rate is divided by 10 (the paper: 35,000
            of 50,000); ``None`` keeps it constant.
        batch_size: datasets per step (the paper: 10).
        min_points: fewest points per dataset (the paper: 100).
        max_points: most points per dataset (the paper: 500).
        width: width of every network (the paper: 128).
        num_inducing: inducing points of each ISAB (the paper: 16).
        test_sets: datasets in the fixed test set.
        test_seed: random seed of the test set (the same for every network); the
            validation set is another stream of the same seed.
        valid_every: score the network on the validation set every this many steps and
            test the weights of the best validation log-likelihood (``0``: the last
            step's weights). The last step's test score is reported either way.
        valid_sets: datasets in the fixed validation set.
        clip_norm: clip the gradient's global norm to this value before every Adam step
            (``None``: no clipping, as in the paper).
        workers: training runs at once, each in its own process (1 under DDP).
        threads: torch CPU threads per process (``None``: torch's choice).
        figures: draw the figures.
        engine: Lightning settings, the fields of
            :class:`deepsets.training.EngineSettings`.
    """

    preset: str = setting(
        "quick",
        help="starting values: quick (minutes on a CPU) or paper (the paper's step counts)",
        choices=Preset,
        cli=False,
    )
    out: str = setting("runs/clustering", help="run directory")
    resume: bool = setting(False, help="continue a run")
    architectures: list[str] = setting(
        default_factory=lambda: [a.value for a in Architecture],
        help="networks: rff, rffp_mean, isab_pma",
        choices=Architecture,
        unique=True,
        nonempty=True,
    )
    seeds: list[int] = setting(
        default_factory=lambda: [0, 1], help="random seeds of every network", nonempty=True
    )
    steps: int = setting(1500, help="optimiser steps per network", minimum=1)
    lr: float = setting(1e-3, help="Adam learning rate", above=0)
    lr_drop_step: int | None = setting(
        1050, help="step of the lr drop to lr/10 (0: none)", minimum=1, zero_is_none=True
    )
    batch_size: int = setting(10, help="datasets per step", minimum=1)
    min_points: int = setting(100, help="fewest points per dataset", minimum=1)
    max_points: int = setting(500, help="most points per dataset", minimum=1)
    width: int = setting(64, help="width of every network", minimum=4)
    num_inducing: int = setting(16, help="inducing points per ISAB", minimum=1)
    test_sets: int = setting(500, help="datasets in the test set", minimum=1)
    test_seed: int = setting(2019, help="random seed of the test and validation sets")
    valid_every: int = setting(
        0,
        help="keep the weights of the best validation LL, scored every N steps (0: the last)",
        minimum=0,
    )
    valid_sets: int = setting(200, help="datasets in the fixed validation set", minimum=1)
    clip_norm: float | None = setting(
        None,
        help="clip the gradient norm to this value (0: no clipping, the paper's)",
        above=0,
        zero_is_none=True,
    )
    workers: int = setting(2, help="training runs at once, one process each", minimum=1)
    threads: int | None = setting(
        1, help="torch CPU threads per process (0: torch's choice)", minimum=1, zero_is_none=True
    )
    figures: bool = setting(True, help="draw the figures (default: yes)")
    engine: dict[str, Any] = setting(
        default_factory=dict, help="Lightning settings (EngineSettings fields)", cli=False
    )

    def check(self) -> None:
        """Rules between settings: ``min_points ≤ max_points``, ``lr_drop_step < steps``,
        ``width`` divisible by the 4 heads, one worker under DDP."""
        if self.min_points > self.max_points:
            raise ValueError(
                f"min_points must be <= max_points={self.max_points}; got {self.min_points}"
            )
        if self.lr_drop_step is not None and self.lr_drop_step >= self.steps:
            raise ValueError(
                f"lr_drop_step must be < steps={self.steps} (0: no drop); got {self.lr_drop_step}"
            )
        if self.width % 4:
            raise ValueError(f"width must be divisible by the 4 heads; got {self.width}")
        engine = self.engine_settings()
        several = engine.num_nodes > 1 or engine.devices not in ("auto", 1)
        if self.workers > 1 and (several or engine.strategy != "auto"):
            raise ValueError(f"workers must be 1 with DDP; got workers={self.workers}")


#: Preset values (fields not named keep the dataclass defaults, which are ``quick``'s).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    # Section 5.3 of the Set Transformer paper: 50,000 steps of 10 datasets, Adam 1e-3
    # dropped to 1e-4 at step 35,000, width 128, ISAB with 16 inducing points; 1,000
    # test datasets. A CPU preset: one run per core (--workers), not DDP, which would
    # multiply the paper's batch of 10 by the number of processes. Unlike the paper:
    # gradient clipping and the best validation weights — without them both ISAB + PMA
    # runs we trained diverged for good after about 18,000 steps (docs/study/clustering.md).
    "paper": {
        "out": "runs/clustering-paper",
        "seeds": [0, 1, 2],
        "steps": 50_000,
        "lr_drop_step": 35_000,
        "width": 128,
        "test_sets": 1000,
        "valid_every": 1000,
        "clip_norm": 10.0,
        "engine": {"checkpoint_every": 2000},
    },
}
