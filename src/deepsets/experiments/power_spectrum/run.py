r"""The driver of the power-spectrum experiment: :func:`run_power_spectrum`.

It trains the networks of the blog post "Permutation-equivariant neural networks for power
spectrum estimation" on the library's Lightning engine, evaluates them against two
baselines (the prior and a least-squares Fourier fit), sweeps the test set size, tests
robustness to unseen high frequencies, draws figures 1–5 and writes ``report.md``,
``metrics.json`` and ``config.json`` into the run directory.

Data flows one way: this module calls the experiment's parts (data, model, baselines,
evaluation, report, figures); none of them calls back.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._common import RunDirectory, machine_info, torch_threads
from .._pool import run_jobs, step_callbacks
from .baselines import EULER_GAMMA, PRIOR_MSE, LeastSquaresEstimator, PriorEstimator
from .config import PowerSpectrumConfig
from .data import ENCODINGS, Encoding, make_stream_sampler
from .evaluate import noise_tests, size_sweep, test_mse
from .figures import draw_figures
from .model import (
    NetworkEstimator,
    PowerSpectrumNet,
    build_model,
    parameter_comparison,
    parameter_count,
)
from .regimes import (
    collect_floor_sweep,
    collect_regimes,
    execute_regime_job,
    fit_network,
    regime_cost,
    regime_jobs,
)
from .report import size_sweep_ratio, write_report

__all__ = ["run_power_spectrum", "summary"]


def _train(
    config: PowerSpectrumConfig,
    *,
    name: str,
    encoding: str,
    depth: int,
    width: int,
    k_max: int,
    k_fin: int,
    steps: int,
    seed: int,
    callbacks: Sequence[Any] = (),
) -> tuple[PowerSpectrumNet, dict[str, Any]]:
    torch.manual_seed(seed)
    model = build_model(encoding, depth=depth, width=width, k_fin=k_fin)
    hparams = {
        "encoding": encoding,
        "depth": depth,
        "width": width,
        "k_max": k_max,
        "k_fin": k_fin,
        "set_size": config.set_size,
        "batch_size": config.batch_size,
        "steps": steps,
        "seed": seed,
    }
    sample = make_stream_sampler(
        set_size=config.set_size,
        batch_size=config.batch_size,
        k_max=k_max,
        k_fin=k_fin,
        encoding=encoding,
        seed=seed,
        noise=config.noise,
    )
    info = fit_network(
        config,
        model,
        sample,
        name=name,
        steps=steps,
        lr=config.lr,
        lr_schedule=config.lr_schedule,
        hparams=hparams,
        callbacks=callbacks,
    )
    return model, info


def _summary(values: list[float]) -> dict[str, float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    std = float(tensor.std()) if len(values) > 1 else 0.0
    return {"mean": float(tensor.mean()), "std": std, "min": float(tensor.min())}


def _jobs(config: PowerSpectrumConfig) -> list[dict[str, Any]]:
    """Every training run of the study: main models, grid cells (those not already a main
    model), the noise-robustness model."""
    jobs: list[dict[str, Any]] = []
    main_keys = set()
    for index, encoding in enumerate(config.encodings):
        seeds = config.seeds
        if index > 0 and config.other_encoding_seeds is not None:
            seeds = seeds[: config.other_encoding_seeds]
        for seed in seeds:
            jobs.append(
                {
                    "kind": "main",
                    "name": f"main-{encoding}-seed{seed}",
                    "encoding": encoding,
                    "depth": config.depth,
                    "width": config.width,
                    "k_max": config.k_max,
                    "k_fin": config.k_fin,
                    "steps": config.steps,
                    "seed": seed,
                }
            )
            main_keys.add((encoding, config.depth, config.width, config.steps, seed))
    for depth in config.grid_depths:
        for width in config.grid_widths:
            for seed in config.grid_seeds:
                key = (config.grid_encoding, depth, width, config.grid_steps, seed)
                jobs.append(
                    {
                        "kind": "grid",
                        "reuse": key in main_keys,
                        "name": f"grid-{config.grid_encoding}-d{depth}-w{width}-seed{seed}",
                        "encoding": config.grid_encoding,
                        "depth": depth,
                        "width": width,
                        "k_max": config.k_max,
                        "k_fin": config.k_fin,
                        "steps": config.grid_steps,
                        "seed": seed,
                    }
                )
    if config.noise_steps > 0:
        encoding, seed = config.encodings[0], config.seeds[0]
        jobs.append(
            {
                "kind": "noise",
                "name": f"noise-{encoding}-kmax{config.noise_k_max}-seed{seed}",
                "encoding": encoding,
                "depth": config.noise_depth,
                "width": config.noise_width,
                "k_max": config.noise_k_max,
                "k_fin": config.noise_k_fin,
                "steps": config.noise_steps,
                "seed": seed,
            }
        )
    return jobs + regime_jobs(config)


def _cost(job: dict[str, Any]) -> float:
    if job["kind"] not in ("main", "grid", "noise"):
        return regime_cost(job)
    return job["steps"] * (job["depth"] * job["width"] ** 2 + 8 * job["k_max"])


def _execute(config_values: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one job (runs in a worker process when ``workers > 1``)."""
    config = PowerSpectrumConfig(**config_values)
    if job["kind"] not in ("main", "grid", "noise"):
        with torch_threads(config.threads):
            return execute_regime_job(config, job, step_callbacks())
    with torch_threads(config.threads):
        model, info = _train(
            config,
            callbacks=step_callbacks(),
            name=job["name"],
            encoding=job["encoding"],
            depth=job["depth"],
            width=job["width"],
            k_max=job["k_max"],
            k_fin=job["k_fin"],
            steps=job["steps"],
            seed=job["seed"],
        )
        info["kind"] = job["kind"]
        network = NetworkEstimator(model, Encoding(job["encoding"]))
        if job["kind"] == "noise":
            info["tests"] = noise_tests(network, PriorEstimator(config.noise_k_fin), config)
            return info
        start = time.perf_counter()
        per_k = test_mse(network, config, config.set_size)
        info.update(per_k_mse=per_k, test_mse=sum(per_k) / len(per_k))
        if job["kind"] == "main":
            info["size_sweep"] = size_sweep(network, config)
        info["eval_seconds"] = time.perf_counter() - start
    return info


def run_power_spectrum(config: PowerSpectrumConfig | dict[str, Any]) -> dict[str, Any]:
    """Run the whole study of ``config`` and write its run directory.

    ``config.out`` receives ``config.json`` (first, so even a crashed run says how it
    was started), ``checkpoints/``, ``logs/``, ``figures/fig{1..5}-*.{png,svg}``,
    ``metrics.json`` and ``report.md``. Under DDP only rank 0 writes the files.

    Returns:
        The metrics (also in ``metrics.json``): ``test_mse``, ``prior_mse``,
        ``lstsq_mse``, ``per_k_mse``, ``size_sweep`` and ``seconds`` for the headline
        model (the first encoding, averaged over seeds), plus ``encodings``, ``runs``,
        ``grid``, ``noise``, ``baselines`` and ``parameters`` in detail.
    """
    config = PowerSpectrumConfig.coerce(config)
    start = time.perf_counter()
    run_dir = RunDirectory.for_config(config)
    with torch_threads(config.threads):
        jobs = _jobs(config)
        todo = [job for job in jobs if not job.get("reuse")]
        done = run_jobs(
            _execute,
            config.to_dict(),
            todo,
            workers=config.workers,
            progress=config.engine_settings().progress,
            cost=_cost,
        )
        metrics = _collect(config, jobs, done, start)
    if metrics["is_global_zero"]:
        figures: dict[str, str] = {}
        if config.figures:
            figures = draw_figures(metrics, config, run_dir.figures)
        metrics["figures"] = figures
        metrics["seconds"] = time.perf_counter() - start
        run_dir.write_json("metrics.json", metrics)
        run_dir.write_text("report.md", write_report(metrics, config))
        metrics["seconds"] = time.perf_counter() - start
        run_dir.write_json("metrics.json", metrics)
    return metrics


def _collect(
    config: PowerSpectrumConfig,
    jobs: list[dict[str, Any]],
    done: list[dict[str, Any]],
    start: float,
) -> dict[str, Any]:
    """The metrics of the finished jobs, beside the baselines (evaluated here)."""
    k_fin = config.k_fin
    prior, lstsq = PriorEstimator(k_fin), LeastSquaresEstimator(config.lstsq_k, k_fin)
    prior_per_k = test_mse(prior, config, config.set_size)
    lstsq_per_k = test_mse(lstsq, config, config.set_size)
    prior_sweep = size_sweep(prior, config)
    lstsq_sweep = size_sweep(lstsq, config)
    runs = [r for r in done if r["kind"] == "main"]
    by_name = {r["name"]: r for r in runs}
    grid = []
    for job in (j for j in jobs if j["kind"] == "grid"):
        if job.get("reuse"):
            source = by_name[f"main-{job['encoding']}-seed{job['seed']}"]
        else:
            source = next(r for r in done if r["name"] == job["name"])
        grid.append({key: source[key] for key in _GRID_KEYS})
    noise = next((r for r in done if r["kind"] == "noise"), None)
    encodings: dict[str, Any] = {}
    for encoding in config.encodings:
        mine = [r for r in runs if r["encoding"] == encoding]
        per_k = [sum(r["per_k_mse"][k] for r in mine) / len(mine) for k in range(k_fin)]
        sizes = list(mine[0]["size_sweep"])
        encodings[encoding] = {
            "seeds": [r["seed"] for r in mine],
            "test_mse": sum(per_k) / k_fin,
            "test_mse_over_seeds": _summary([r["test_mse"] for r in mine]),
            "per_k_mse": per_k,
            "size_sweep": {n: sum(r["size_sweep"][n] for r in mine) / len(mine) for n in sizes},
            "parameters": mine[0]["parameters"],
            "train_seconds": sum(r["train_seconds"] for r in mine),
        }
    headline = encodings[config.encodings[0]]
    return {
        "task": "power-spectrum",
        "preset": config.preset,
        "headline_encoding": config.encodings[0],
        "test_mse": headline["test_mse"],
        "prior_mse": sum(prior_per_k) / k_fin,
        "lstsq_mse": sum(lstsq_per_k) / k_fin,
        "prior_mse_theory": PRIOR_MSE,
        "per_k_mse": headline["per_k_mse"],
        "prior_per_k_mse": prior_per_k,
        "lstsq_per_k_mse": lstsq_per_k,
        "size_sweep": headline["size_sweep"],
        "baselines": {
            "prior": {
                "formula": f"E[log p_k] = -2 log k - gamma (gamma = {EULER_GAMMA:.6f})",
                "per_k_mse": prior_per_k,
                "size_sweep": prior_sweep,
            },
            "lstsq": {
                "formula": (
                    f"least-squares Fourier fit up to K = {config.lstsq_k}, log(a_k^2 + b_k^2)"
                ),
                "per_k_mse": lstsq_per_k,
                "size_sweep": lstsq_sweep,
            },
        },
        "encodings": encodings,
        "runs": runs,
        "grid": grid,
        "noise": noise,
        "parameters": {
            "model": headline["parameters"],
            "dense_same_io": _dense_count(config, ENCODINGS[config.encodings[0]]),
            "seed_example": parameter_comparison(512),
        },
        "train_set_size": config.set_size,
        "machine": {
            **machine_info(workers=config.workers, threads=config.threads),
            "malloc_tuned": "MALLOC_MMAP_THRESHOLD_" in os.environ,
        },
        "regimes": collect_regimes(config, done),
        "floor_sweep": collect_floor_sweep(config, done),
        "is_global_zero": all(r.get("is_global_zero", True) for r in done),
        "seconds": time.perf_counter() - start,
    }


_GRID_KEYS = ("depth", "width", "seed", "parameters", "train_seconds", "per_k_mse", "test_mse")


def _dense_count(config: PowerSpectrumConfig, input_dim: int) -> int:
    """Parameters of the dense network that replaces every layer of the main model by a
    fully connected one on the flattened set (counted on ``meta`` modules)."""
    n = config.set_size
    widths = [input_dim] + [config.width] * config.depth
    layers = [nn.Linear(n * a, n * b, device="meta") for a, b in itertools.pairwise(widths)]
    layers.append(nn.Linear(n * config.width, config.k_fin, device="meta"))
    return sum(parameter_count(layer) for layer in layers)


def summary(metrics: dict[str, Any], config: PowerSpectrumConfig) -> str | None:
    """The lines ``deepsets power-spectrum`` prints at the end (``None`` off rank 0)."""
    if not metrics.get("is_global_zero", True):
        return None
    per_k = " / ".join(f"{v:.3f}" for v in metrics["per_k_mse"])
    ratio = size_sweep_ratio(metrics["size_sweep"], config.set_size)
    return (
        f"test_mse {metrics['test_mse']:.3f} ({metrics['headline_encoding']} encoding; "
        f"prior {metrics['prior_mse']:.3f}, least squares {metrics['lstsq_mse']:.4f})\n"
        f"per-k MSE {per_k}; size sweep max MSE(N)/MSE({config.set_size}) = {ratio:.3f}\n"
        f"{metrics['seconds']:.0f} s; report: {Path(config.out) / 'report.md'}"
    )
