r"""The driver of the max-regression experiment: :func:`run_max_regression`.

It trains every row of Table 1 of the Set Transformer paper (Deep Sets with mean, sum and
max pooling; SAB + PMA) once per random seed on the library's Lightning engine
(:func:`deepsets.training.fit_stream`, L1 loss, Adam), scores each run on one fixed test
set, and writes ``config.json``, ``metrics.json``, ``report.md`` and
``figures/mae.{png,svg}`` into the run directory.

Data flows one way: this module calls the experiment's parts (data, model, evaluation,
report, figures); none of them calls back.

Reference:
    Lee et al., *Set Transformer*, ICML 2019, https://arxiv.org/abs/1810.00825
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ...training import KeepBest, SetModelModule, fit_stream
from .._common import RunDirectory, machine_info, torch_threads
from .._pool import run_jobs, step_callbacks
from .config import MAX_POOL_TARGET, PAPER_MAE, ROW_LABELS, MaxRegressionConfig
from .data import Row, make_stream_sampler
from .evaluate import score_model, validation_score
from .figures import draw_figure
from .model import build_model, parameter_count
from .report import write_report

__all__ = ["run_max_regression", "summary"]

#: Relative cost of a training step per row (measured, one thread: SAB + PMA ≈ 3.5×).
_ROW_COST = {Row.SAB_PMA.value: 3.5}


def _jobs(config: MaxRegressionConfig) -> list[dict[str, Any]]:
    return [
        {"name": f"{row}-seed{seed}", "row": row, "seed": seed, "steps": config.steps}
        for row in config.rows
        for seed in config.seeds
    ]


def _cost(job: dict[str, Any]) -> float:
    return job["steps"] * _ROW_COST.get(job["row"], 1.0)


def _execute(config_values: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Train and score one row with one random seed (in a worker when ``workers > 1``)."""
    config = MaxRegressionConfig(**config_values)
    with torch_threads(config.threads):
        torch.manual_seed(job["seed"])
        model = build_model(job["row"], width=config.width)
        hparams = {"row": job["row"], "seed": job["seed"], "steps": job["steps"]}
        module = SetModelModule(
            model,
            loss="l1",
            lr=config.lr,
            lr_schedule=config.lr_schedule,
            max_steps=job["steps"],
            hparams=hparams,
        )
        sample = make_stream_sampler(
            batch_size=config.batch_size, max_size=config.max_size, seed=job["seed"]
        )
        keep = (
            KeepBest(validation_score(config), config.valid_every) if config.valid_every else None
        )
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit_stream(
            module,
            sample,
            max_steps=job["steps"],
            out_dir=config.out,
            name=job["name"],
            settings=config.engine_settings(),
            resume=config.resume,
            callbacks=[*step_callbacks(), *([keep] if keep else [])],
        )
        info = {
            **job,
            "train_seconds": time.perf_counter() - wall,
            "train_cpu_seconds": time.process_time() - cpu,
            "final_loss": result.extra.get("loss"),
            "resumed": result.resumed_from is not None,
            "is_global_zero": result.is_global_zero,
            "parameters": parameter_count(model),
        }
        model.eval().cpu()
        info["mae_final"] = score_model(model, config)["mae"]
        if keep is not None:
            model.load_state_dict(keep.best_state)
            info.update(best_step=keep.best_step, valid_mae=keep.best_score)
        info.update(score_model(model, config))
    return info


def _spread(values: list[float]) -> tuple[float, float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    return float(tensor.mean()), float(tensor.std()) if len(values) > 1 else 0.0


def _row_summary(row: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [r for r in runs if r["row"] == row]
    mean, std = _spread([r["mae"] for r in mine])
    paper_mean, paper_std = PAPER_MAE[row]
    sizes = list(mine[0]["mae_by_size"])
    return {
        "label": ROW_LABELS[row],
        "seeds": [r["seed"] for r in mine],
        "mae_per_seed": [r["mae"] for r in mine],
        "mae_final_per_seed": [r["mae_final"] for r in mine],
        "best_steps": [r.get("best_step") for r in mine],
        "mae_mean": mean,
        "mae_std": std,
        "paper_mean": paper_mean,
        "paper_std": paper_std,
        "paper_bound": paper_mean + 3 * paper_std,
        "within_paper": mean <= paper_mean + 3 * paper_std,
        "mae_by_size": {n: sum(r["mae_by_size"][n] for r in mine) / len(mine) for n in sizes},
        "parameters": mine[0]["parameters"],
        "train_seconds": sum(r["train_seconds"] for r in mine),
        "train_cpu_seconds_per_step": sum(r["train_cpu_seconds"] for r in mine)
        / sum(r["steps"] for r in mine),
    }


def _collect(config: MaxRegressionConfig, runs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = {row: _row_summary(row, runs) for row in config.rows}
    targets: dict[str, bool] = {
        "all_rows_within_paper": all(r["within_paper"] for r in rows.values())
    }
    if Row.MAX.value in rows:
        targets["max_pool_mae_at_most_0.2"] = rows[Row.MAX.value]["mae_mean"] <= MAX_POOL_TARGET
    return {
        "task": "max-regression",
        "preset": config.preset,
        "steps": config.steps,
        "seeds": list(config.seeds),
        "test_sets": config.test_sets,
        "rows": rows,
        "ordering": sorted(rows, key=lambda r: rows[r]["mae_mean"]),
        "paper_ordering": sorted(rows, key=lambda r: PAPER_MAE[r][0]),
        "targets": targets,
        "runs": runs,
        "machine": machine_info(workers=config.workers, threads=config.threads),
        "is_global_zero": all(r["is_global_zero"] for r in runs),
    }


def run_max_regression(config: MaxRegressionConfig | dict[str, Any]) -> dict[str, Any]:
    """Train and score every row and random seed of ``config``; write the run directory.

    ``config.out`` receives ``config.json`` (first), ``checkpoints/``, ``logs/``,
    ``figures/mae.{png,svg}``, ``metrics.json`` and ``report.md``. Under DDP only rank 0
    writes the files.

    Returns:
        The metrics (also in ``metrics.json``): ``rows`` (per row: ``mae_mean``,
        ``mae_std``, ``mae_per_seed`` — of the weights with the best validation MAE when
        ``valid_every`` is set, their ``best_steps``, ``mae_final_per_seed`` of the last
        step's weights — the paper's ``paper_mean``/``paper_std``,
        ``within_paper``, ``mae_by_size``, ...), ``ordering`` and ``paper_ordering``
        (rows from best to worst), ``targets``, ``runs`` (one per row and seed),
        ``machine`` and ``seconds``.
    """
    config = MaxRegressionConfig.coerce(config)
    start = time.perf_counter()
    run_dir = RunDirectory.for_config(config)
    with torch_threads(config.threads):
        runs = run_jobs(
            _execute,
            config.to_dict(),
            _jobs(config),
            workers=config.workers,
            progress=config.engine_settings().progress,
            cost=_cost,
        )
    metrics = _collect(config, runs)
    if metrics["is_global_zero"]:
        metrics["figure"] = draw_figure(metrics, run_dir.figures) if config.figures else None
        metrics["seconds"] = time.perf_counter() - start
        run_dir.write_text("report.md", write_report(metrics, config))
        run_dir.write_json("metrics.json", metrics)
    return metrics


def summary(metrics: dict[str, Any], config: MaxRegressionConfig) -> str | None:
    """The lines ``deepsets max-regression`` prints at the end (``None`` off rank 0)."""
    if not metrics.get("is_global_zero", True):
        return None
    lines = [
        f"{row['label']}: MAE {row['mae_mean']:.4f} ± {row['mae_std']:.4f} "
        f"(paper {row['paper_mean']} ± {row['paper_std']})"
        for row in metrics["rows"].values()
    ]
    lines.append(f"{metrics['seconds']:.0f} s; report: {Path(config.out) / 'report.md'}")
    return "\n".join(lines)
