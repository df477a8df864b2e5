"""The report: sections, rows beside the paper, the ordering verdict."""

from __future__ import annotations

from typing import Any

from deepsets.experiments.clustering.config import ClusteringConfig
from deepsets.experiments.clustering.report import ordering, score_cell, write_report


def metrics_with(means: dict[str, float]) -> dict[str, Any]:
    rows = {
        name: {
            "label": {"rff": "rFF + Pooling", "rffp_mean": "rFFp-mean + Pooling"}.get(
                name, "ISAB(16) + PMA"
            ),
            "mean": mean,
            "std": 0.01,
            "min": mean - 0.01,
            "seeds": [0, 1],
            "per_seed": [mean - 0.01, mean + 0.01],
            "last_step_per_seed": [mean - 0.2, mean - 0.3],
            "best_steps": [3000, 5000],
            "gap_to_oracle": -1.47 - mean,
            "parameters": 1000,
            "train_cpu_seconds_per_step": 0.02,
        }
        for name, mean in means.items()
    }
    return {
        "preset": "quick",
        "oracle_ll": -1.47,
        "oracle_ll_se": 0.006,
        "one_gaussian_ll": -3.8,
        "rows": rows,
        "runs": [],
        "train_cpu_seconds": 100.0,
        "seconds": 60.0,
        "machine": {"workers": 2, "torch_threads": 1},
        "figures": {"ll_bars": "figures/ll-bars.png"},
    }


def test_report_puts_our_rows_beside_the_paper() -> None:
    text = write_report(
        metrics_with({"rff": -2.1, "rffp_mean": -1.9, "isab_pma": -1.6}), ClusteringConfig()
    )
    for heading in ("## Results", "## Ordering", "## Where we differ", "## Cost"):
        assert heading in text
    assert "| ISAB(16) + PMA | -1.6000 ± 0.0100 | 2 | -1.5009 ± 0.0068 | -0.0991 |" in text
    assert "| Oracle (ceiling) | -1.4700 |" in text
    assert "the paper's ordering holds" in text
    assert "![test log-likelihood](figures/ll-bars.png)" in text
    assert "1,500 steps at width 64" in text
    one_seed = metrics_with({"isab_pma": -1.6})
    one_seed["rows"]["isab_pma"].update(seeds=[0], train_cpu_seconds_per_step=None)
    text = write_report(one_seed, ClusteringConfig())
    assert "| ISAB(16) + PMA | -1.6000 | 1 |" in text and "– (not trained here)" in text


def test_report_says_when_the_ordering_differs() -> None:
    metrics = metrics_with({"rff": -1.6, "rffp_mean": -1.9, "isab_pma": -2.1})
    assert ordering(metrics) == ["rff", "rffp_mean", "isab_pma"]
    assert "this differs from the paper's ordering" in write_report(metrics, ClusteringConfig())


def test_paper_settings_drop_the_short_training_note() -> None:
    config = ClusteringConfig(steps=50_000, lr_drop_step=35_000, width=128)
    text = write_report(metrics_with({"isab_pma": -1.5}), config)
    assert "Shorter training" not in text
    assert "Gradient clipping" not in text and "Best validation weights" not in text


def test_clipping_and_best_weights_are_named_with_the_last_steps_scores() -> None:
    config = ClusteringConfig(clip_norm=10.0, valid_every=1000, valid_sets=200)
    text = write_report(metrics_with({"isab_pma": -1.5}), config)
    assert "clipped to 10 before every Adam step" in text
    assert "every 1,000 steps" in text and "200 validation datasets" in text
    assert "ISAB(16) + PMA: steps 3000, 5000, last-step test LL -1.7000, -1.8000" in text


def test_score_cell_gives_the_spread_only_over_several_seeds() -> None:
    assert score_cell({"mean": -1.5, "std": 0.0, "seeds": [0]}) == "-1.5000"
    assert score_cell({"mean": -1.5, "std": 0.002, "seeds": [0, 1]}) == "-1.5000 ± 0.0020"
