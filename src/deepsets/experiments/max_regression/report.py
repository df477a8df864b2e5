"""``report.md`` of the max-regression experiment: our test MAE beside Table 1 of the Set
Transformer paper, the targets, and plainly where our setup differs from the paper's."""

from __future__ import annotations

from typing import Any

from .config import MAX_POOL_TARGET, PAPER_MAE, ROW_LABELS, MaxRegressionConfig

__all__ = ["write_report"]

_PAPER_STEPS = 20_000


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _verdict(row: dict[str, Any]) -> str:
    if row["mae_mean"] < row["paper_mean"] - 3 * row["paper_std"]:
        return "better"
    return "within" if row["within_paper"] else "**worse**"


def _ours(row: dict[str, Any]) -> str:
    if len(row["mae_per_seed"]) == 1:
        return f"{row['mae_mean']:.4f} (1 seed)"
    return f"{row['mae_mean']:.4f} ± {row['mae_std']:.4f}"


def _results(metrics: dict[str, Any], selected: bool) -> list[str]:
    header = ["model", "ours: MAE", "per random seed", "paper: MAE", "target (≤)", "verdict"]
    if selected:
        header[2:3] = ["per random seed (step)", "last step's weights, per seed"]
    lines = [_row(header), _row(["---"] * len(header))]
    for row in metrics["rows"].values():
        seeds = ", ".join(f"{v:.4f}" for v in row["mae_per_seed"])
        cells = [row["label"], _ours(row), seeds]
        if selected:
            cells[2] = ", ".join(
                f"{v:.4f} ({step:,})"
                for v, step in zip(row["mae_per_seed"], row["best_steps"], strict=True)
            )
            cells.append(", ".join(f"{v:.4f}" for v in row["mae_final_per_seed"]))
        cells += [
            f"{row['paper_mean']} ± {row['paper_std']}",
            f"{row['paper_bound']:.4f}",
            _verdict(row),
        ]
        lines.append(_row(cells))
    return lines


def _by_size(metrics: dict[str, Any]) -> list[str]:
    rows = list(metrics["rows"].values())
    sizes = list(rows[0]["mae_by_size"])
    lines = [_row(["set size", *(r["label"] for r in rows)]), _row(["---"] * (len(rows) + 1))]
    for n in sizes:
        lines.append(_row([n, *(f"{r['mae_by_size'][n]:.4f}" for r in rows)]))
    return lines


def _differences(metrics: dict[str, Any], config: MaxRegressionConfig) -> list[str]:
    seeds = len(metrics["seeds"])
    lines = [
        "- **Set sizes per set, with a mask.** Every set draws its own size and a batch "
        "is padded with a mask; the authors' code (`max_regression_demo.ipynb`) draws one "
        "size per batch, so its batches need no mask. The distribution of sizes is the same.",
        "- **Real values.** x ~ U[0, 100] as the paper states; the authors' code draws "
        "integers 1..99.",
        "- **φ ends with a ReLU.** `DeepSetsInvariant` puts a ReLU after every layer of φ; "
        "the authors' φ ends with a linear layer. ρ is the same (Linear(64), ReLU, "
        "Linear(1)); SAB + PMA is the same network (two SABs of width 64 with 4 heads, PMA "
        "with one seed vector, a linear output, no LayerNorm).",
        f"- **Test set.** One fixed draw of {metrics['test_sets']:,} sets (random seed "
        f"{config.test_seed}) for every model, not the paper's draw.",
        f"- **Spread.** Ours is the standard deviation over {seeds} random seeds, one run "
        "each; the paper's is its reported ± over its runs."
        if seeds > 1
        else "- **One random seed per row**, so no spread of ours; the paper reports ± over "
        "its runs.",
    ]
    if config.valid_every:
        lines.append(
            f"- **Which weights.** Each run is scored every {config.valid_every:,} steps on "
            f"a separate validation draw of {config.valid_sets:,} sets, and the weights with "
            "the lowest validation MAE are the ones tested (their step is in brackets); the "
            "paper does not say which weights it scored. With a constant learning rate an "
            "L1 loss can end a run on a spike; the last step's weights are in the table too."
        )
    if config.lr_schedule != "constant":
        lines.append(
            f"- **Learning rate.** {config.lr_schedule} schedule from {config.lr:g}; the "
            "paper keeps it constant."
        )
    if metrics["steps"] != _PAPER_STEPS:
        lines.append(
            f"- **Shorter training.** {metrics['steps']:,} steps, not the paper's "
            f"{_PAPER_STEPS:,}: the targets are meant for the `paper` preset."
        )
    return lines


def write_report(metrics: dict[str, Any], config: MaxRegressionConfig) -> str:
    """The Markdown report of ``metrics`` (from
    :func:`~deepsets.experiments.max_regression.run.run_max_regression`)."""
    rows = metrics["rows"]
    ours = " < ".join(ROW_LABELS[r] for r in metrics["ordering"])
    paper = " < ".join(ROW_LABELS[r] for r in metrics["paper_ordering"])
    same = (
        "the same as" if metrics["ordering"] == metrics["paper_ordering"] else "**not** the same as"
    )
    lines = [
        "# Max regression (Set Transformer, Table 1)",
        "",
        f"Preset `{metrics['preset']}`: {metrics['steps']:,} steps of {config.batch_size} "
        f"sets of 1..{config.max_size} numbers x ~ U[0, 100], target max(x), L1 loss, Adam "
        f"{config.lr:g} ({config.lr_schedule}), width {config.width}; "
        f"random seeds {metrics['seeds']}. "
        f"{metrics['seconds']:.0f} s with {config.workers} worker(s).",
        "",
        "## Results",
        "",
        "Test MAE, mean ± standard deviation over random seeds. The target of a row is the "
        "paper's mean + 3 × its spread (lower is better).",
        "",
        *_results(metrics, bool(config.valid_every)),
        "",
        f"Ordering, best first — ours: {ours}; paper: {paper} ({same} the paper's).",
        "",
    ]
    targets = metrics["targets"]
    lines.append(
        "Targets: every row within the paper's mean + 3 × spread or better: "
        + ("met" if targets["all_rows_within_paper"] else "**not met**")
    )
    if "max_pool_mae_at_most_0.2" in targets:
        lines[-1] += (
            f"; Deep Sets with max pooling ≤ {MAX_POOL_TARGET} MAE: "
            + ("met" if targets["max_pool_mae_at_most_0.2"] else "**not met**")
            + f" ({rows['rff-max']['mae_mean']:.4f})"
        )
    lines[-1] += "."
    if metrics.get("figure"):
        lines += ["", f"![test MAE per model]({metrics['figure']})"]
    lines += [
        "",
        "## MAE by set size",
        "",
        *_by_size(metrics),
        "",
        "## Where we differ from the paper",
        "",
        *_differences(metrics, config),
        "",
        "## Cost",
        "",
        _row(["model", "parameters", "train seconds (all seeds)", "CPU ms per step"]),
        _row(["---"] * 4),
        *(
            _row(
                [
                    r["label"],
                    r["parameters"],
                    f"{r['train_seconds']:.0f}",
                    f"{1e3 * r['train_cpu_seconds_per_step']:.2f}",
                ]
            )
            for r in rows.values()
        ),
        "",
        "Paper values: "
        + ", ".join(f"{ROW_LABELS[k]} {m} ± {s}" for k, (m, s) in PAPER_MAE.items())
        + " "
        "(Lee et al., *Set Transformer*, ICML 2019, Table 1, https://arxiv.org/abs/1810.00825).",
        "",
    ]
    return "\n".join(lines)
