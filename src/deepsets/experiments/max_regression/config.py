"""Settings of the max-regression experiment: one dataclass and two presets.

Every setting is a field of :class:`MaxRegressionConfig`, a command-line flag
(``--field-name``) and a config-file entry (JSON, or TOML by the ``.toml`` suffix),
resolved preset < config file < flags (:mod:`deepsets.experiments._config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..._settings import setting
from .._config import ExperimentConfig
from .data import Row

__all__ = [
    "MAX_POOL_TARGET",
    "PAPER_MAE",
    "PRESETS",
    "ROW_LABELS",
    "MaxRegressionConfig",
    "Preset",
    "Schedule",
]


class Schedule(str, Enum):
    """Learning-rate schedules the experiment offers (a subset of the engine's)."""

    CONSTANT = "constant"
    COSINE = "cosine"


class Preset(str, Enum):
    """Named starting points of :class:`MaxRegressionConfig`."""

    QUICK = "quick"
    PAPER = "paper"


@dataclass
class MaxRegressionConfig(ExperimentConfig):
    """Every setting of ``deepsets max-regression`` (the field's help is its flag's help).

    Attributes:
        preset: the preset the other values started from (``quick`` or ``paper``).
        out: run directory (report, metrics, figure, checkpoints, logs).
        resume: continue interrupted training runs from their ``last.ckpt``.
        rows: the models of Table 1 to train: ``rff-mean``, ``rff-sum``, ``rff-max``
            (Deep Sets with that pooling) and ``sab-pma`` (Set Transformer).
        seeds: random seeds; every row is trained once per seed (initialisation and
            training stream).
        steps: optimiser steps (batches) per run; the paper trains 20,000.
        batch_size: sets per step (the paper's 128).
        max_size: sets hold ``1..max_size`` numbers (the paper's 10).
        width: width of every hidden layer (the paper's 64).
        lr: Adam's learning rate (the paper's 1e-3; the peak for ``cosine``).
        lr_schedule: ``constant`` (the paper's) or ``cosine`` (decays to 0 at the last
            step; the quick preset's, so that its few steps end on a settled model).
        test_sets: sets in the fixed test set.
        test_seed: random seed of the test set (the same for every model); the
            validation set is another stream of the same seed.
        valid_every: score the model on the validation set every this many steps and
            score the weights with the lowest validation MAE on the test set (``0``: the
            last step's weights). The final weights' test MAE is reported either way.
        valid_sets: sets in the fixed validation set.
        workers: training runs at once, each in its own process (``1``: one after the
            other in this process); must be 1 under DDP.
        threads: torch CPU threads per process (``None``: torch's choice).
        figures: draw the figure (PNG and SVG).
        engine: Lightning settings, the fields of
            :class:`deepsets.training.EngineSettings`.
    """

    preset: str = setting(
        "quick",
        help="starting values: quick (a minute or two) or paper (Table 1's training)",
        choices=Preset,
        cli=False,
    )
    out: str = setting("runs/max-regression", help="run directory")
    resume: bool = setting(False, help="continue a run")
    rows: list[str] = setting(
        default_factory=lambda: [row.value for row in Row],
        help="models: rff-mean, rff-sum, rff-max, sab-pma (default: all)",
        choices=Row,
        unique=True,
        nonempty=True,
    )
    seeds: list[int] = setting(
        default_factory=lambda: [0], help="random seeds, one run per row and seed", nonempty=True
    )
    steps: int = setting(2000, help="optimiser steps per run", minimum=1)
    batch_size: int = setting(128, help="sets per step", minimum=1)
    max_size: int = setting(10, help="sets hold 1..max_size numbers", minimum=1)
    width: int = setting(64, help="width of the hidden layers (divisible by 4)", minimum=4)
    lr: float = setting(1e-3, help="Adam learning rate", above=0)
    lr_schedule: str = setting("cosine", help="constant or cosine", choices=Schedule)
    test_sets: int = setting(1000, help="sets in the fixed test set", minimum=1)
    test_seed: int = setting(2019, help="random seed of the test and validation sets")
    valid_every: int = setting(
        0,
        help="keep the weights of the best validation MAE, scored every N steps (0: the last)",
        minimum=0,
    )
    valid_sets: int = setting(1000, help="sets in the fixed validation set", minimum=1)
    workers: int = setting(2, help="training runs at once, one process each", minimum=1)
    threads: int | None = setting(
        1, help="torch CPU threads per process (0: torch's choice)", minimum=1, zero_is_none=True
    )
    figures: bool = setting(True, help="draw the figure (default: yes)")
    engine: dict[str, Any] = setting(
        default_factory=dict, help="Lightning settings (EngineSettings fields)", cli=False
    )

    def check(self) -> None:
        """Rules between settings: ``width`` divisible by the 4 attention heads; one
        worker under DDP."""
        if self.width % 4:
            raise ValueError(f"width must be divisible by 4 (attention heads); got {self.width}")
        engine = self.engine_settings()
        if self.workers > 1 and (engine.num_nodes > 1 or engine.devices not in ("auto", 1)):
            raise ValueError(
                f"workers must be 1 with DDP; got workers={self.workers}, "
                f"devices={engine.devices!r}, num_nodes={engine.num_nodes}"
            )


#: Preset values (fields not named keep the dataclass defaults, which are ``quick``'s).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    # Table 1's training: 20,000 batches of 128 sets, Adam 1e-3, width 64; three seeds.
    # A constant learning rate with an L1 loss ends some runs on a spike, so the weights
    # scored are those of the best validation MAE (every 500 steps); the last ones are
    # reported beside them.
    "paper": {
        "out": "runs/max-regression-paper",
        "seeds": [0, 1, 2],
        "steps": 20_000,
        "lr_schedule": "constant",
        "valid_every": 500,
        "engine": {"checkpoint_every": 5000},
    },
}

#: Table 1 of the paper: test MAE, mean and spread over its runs, per row.
PAPER_MAE: dict[str, tuple[float, float]] = {
    Row.MEAN.value: (2.133, 0.190),
    Row.SUM.value: (1.902, 0.137),
    Row.MAX.value: (0.1355, 0.0074),
    Row.SAB_PMA.value: (0.2085, 0.0127),
}
#: Labels of the rows as the paper names them.
ROW_LABELS: dict[str, str] = {
    Row.MEAN.value: "rFF + pooling (mean)",
    Row.SUM.value: "rFF + pooling (sum)",
    Row.MAX.value: "rFF + pooling (max)",
    Row.SAB_PMA.value: "SAB + PMA",
}
#: The issue's bar for Deep Sets with max pooling (test MAE).
MAX_POOL_TARGET = 0.2
