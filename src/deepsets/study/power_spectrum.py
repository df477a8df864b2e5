r"""The power-spectrum study as one function: :func:`run_power_spectrum`.

It trains the study's permutation-invariant networks on the library's Lightning engine,
evaluates them against two baselines (the prior and a least-squares Fourier fit), sweeps
the test set size, tests robustness to unseen high frequencies, draws figures 1–5 and
writes ``report.md``, ``metrics.json`` and ``config.json`` into the run directory.

Every number is a mean squared error of :math:`\log p_k` averaged over the test
functions (and over ``k = 1..K_fin`` where no ``k`` is named).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import PermutationEquivariantLayer
from .._validation import resolve_option
from ..tasks.power_spectrum import (
    ENCODINGS,
    EULER_GAMMA,
    Encoding,
    PowerSpectrumNet,
    encode,
    evaluate_mse,
    fixed_spectra,
    least_squares_log_power,
    make_stream_sampler,
    parameter_count,
    prior_log_power,
    sample_at,
    squared_errors,
)
from .config import PowerSpectrumConfig

__all__ = [
    "PRIOR_MSE",
    "build_model",
    "parameter_comparison",
    "run_power_spectrum",
]

#: :math:`\mathrm{Var}[\log p] = \pi^2/6` for an exponential ``p``: the prior's MSE.
PRIOR_MSE = math.pi**2 / 6

Predict = Callable[[Tensor, Tensor], Tensor]


def build_model(encoding: str, *, depth: int, width: int, k_fin: int) -> PowerSpectrumNet:
    """The study's network for ``encoding`` (``raw``: 2 inputs, ``circle``: 3)."""
    kind = resolve_option(encoding, Encoding, name="encoding")
    return PowerSpectrumNet(ENCODINGS[kind.value], depth=depth, width=width, k_fin=k_fin)


def parameter_comparison(set_size: int = 512) -> dict[str, int]:
    r"""The seed's footnotes 3–4, counted on real modules (the dense one on the ``meta``
    device, so it costs no memory).

    A 2 → 4 channel :class:`~deepsets.PermutationEquivariantLayer` has
    :math:`2\cdot 4\cdot 2 + 4 = 20` parameters; a dense layer from ``N`` (x, y) pairs to
    ``N`` 4-vectors has :math:`(2N)(4N) + 4N` (2,099,200 at ``N = 512``).
    """
    equivariant = PermutationEquivariantLayer(2, 4, pool_type="mean")
    dense = nn.Linear(2 * set_size, 4 * set_size, device="meta")
    return {
        "set_size": set_size,
        "equivariant": parameter_count(equivariant),
        "dense": parameter_count(dense),
    }


def _model_predict(model: nn.Module, encoding: str) -> Predict:
    device = next(model.parameters()).device

    def predict(x: Tensor, y: Tensor) -> Tensor:
        return model(encode(x.to(device), y.to(device), encoding))

    return predict


def _prior_predict(k_fin: int) -> Predict:
    def predict(x: Tensor, y: Tensor) -> Tensor:
        return prior_log_power(k_fin, x.shape[0], device=x.device)

    return predict


def _lstsq_predict(k_fit: int, k_fin: int) -> Predict:
    def predict(x: Tensor, y: Tensor) -> Tensor:
        return least_squares_log_power(x, y, k_fit, k_fin)

    return predict


def _test_mse(predict: Predict, config: PowerSpectrumConfig, set_size: int) -> list[float]:
    """Per-k MSE on the fixed test set of ``config`` at ``set_size``."""

    def on_batch(batch: Any) -> Tensor:
        return predict(batch.x, batch.y)

    per_k = evaluate_mse(
        on_batch,
        k_fin=config.k_fin,
        k_max=config.k_max,
        set_size=set_size,
        num_sets=config.test_sets,
        seed=config.test_seed,
    )
    return [float(v) for v in per_k]


def _size_sweep(predict: Predict, config: PowerSpectrumConfig) -> dict[str, float]:
    """MSE at every sweep size on the same functions (only the sample positions change)."""
    log_power, phase = fixed_spectra(config.sweep_sets, config.k_max, seed=config.test_seed)
    sweep: dict[str, float] = {}
    for size in _sweep_sizes(config):
        batch = sample_at(log_power, phase, size, seed=config.test_seed)
        sweep[str(size)] = float(squared_errors(predict, batch, config.k_fin).mean())
    return sweep


def _sweep_sizes(config: PowerSpectrumConfig) -> list[int]:
    return sorted({*config.sweep_sizes, config.set_size})


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
    from ..training import SetModelModule, fit_stream

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
    module = SetModelModule(
        model,
        loss="mse",
        lr=config.lr,
        lr_schedule=config.lr_schedule,
        max_steps=steps,
        hparams=hparams,
    )
    sample = make_stream_sampler(
        set_size=config.set_size,
        batch_size=config.batch_size,
        k_max=k_max,
        k_fin=k_fin,
        encoding=encoding,
        seed=seed,
    )
    start = time.perf_counter()
    result = fit_stream(
        module,
        sample,
        max_steps=steps,
        out_dir=config.out,
        name=name,
        settings=config.engine_settings(),
        resume=config.resume,
        callbacks=callbacks,
    )
    model.eval()
    info = {
        "name": name,
        **hparams,
        "parameters": parameter_count(model),
        "train_seconds": time.perf_counter() - start,
        "final_loss": result.extra.get("loss"),
        "resumed": result.resumed_from is not None,
        "is_global_zero": result.is_global_zero,
        "checkpoint": str(result.checkpoint),
    }
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
    return jobs


def _cost(job: dict[str, Any]) -> float:
    return job["steps"] * (job["depth"] * job["width"] ** 2 + 8 * job["k_max"])


# In a worker process: where to report training steps (set by the pool's initializer).
_STEP_QUEUE: Any = None


def _set_step_queue(queue: Any) -> None:
    global _STEP_QUEUE
    _STEP_QUEUE = queue
    if queue is not None:
        # Progress reports are expendable: a worker must never hang at exit waiting for the
        # parent to read them (it stops reading when another job fails).
        queue.cancel_join_thread()


def _execute(config_values: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one job (runs in a worker process when ``workers > 1``)."""
    config = PowerSpectrumConfig(**config_values)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    callbacks = []
    if _STEP_QUEUE is not None:
        from ..training import StepReporter

        callbacks.append(StepReporter(_STEP_QUEUE.put))
    model, info = _train(
        config,
        callbacks=callbacks,
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
    predict = _model_predict(model, job["encoding"])
    if job["kind"] == "noise":
        info["tests"] = _noise_tests(predict, config)
        return info
    start = time.perf_counter()
    per_k = _test_mse(predict, config, config.set_size)
    info.update(per_k_mse=per_k, test_mse=sum(per_k) / len(per_k))
    if job["kind"] == "main":
        info["size_sweep"] = _size_sweep(predict, config)
    info["eval_seconds"] = time.perf_counter() - start
    return info


def _noise_tests(predict: Predict, config: PowerSpectrumConfig) -> dict[str, Any]:
    tests = {}
    for k_max in config.noise_test_k_max:
        log_power, phase = fixed_spectra(config.noise_sets, k_max, seed=config.test_seed)
        batch = sample_at(log_power, phase, config.set_size, seed=config.test_seed)
        errors = squared_errors(predict, batch, config.noise_k_fin)
        with torch.no_grad():
            examples = predict(batch.x[:4], batch.y[:4]).double().cpu()
        prior = squared_errors(_prior_predict(config.noise_k_fin), batch, config.noise_k_fin)
        tests[str(k_max)] = {
            "per_k_mse": errors.mean(0).tolist(),
            "mse": float(errors.mean()),
            "prior_mse": float(prior.mean()),
            "example_true_log_power": batch.target(config.noise_k_fin)[:4].tolist(),
            "example_predicted_log_power": examples.tolist(),
        }
    return tests


def _execute_all(config: PowerSpectrumConfig, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the jobs, longest first, in ``config.workers`` processes; results in job order."""
    todo = [job for job in jobs if not job.get("reuse")]
    order = sorted(range(len(todo)), key=lambda i: -_cost(todo[i]))
    values = config.to_dict()
    results: dict[int, dict[str, Any]] = {}
    if config.workers == 1 or len(todo) == 1:
        for i in order:
            results[i] = _execute(values, todo[i])
    else:
        import multiprocessing
        import queue as queues
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        from tqdm import tqdm

        # Several workers' step bars would overwrite each other on one terminal line: the
        # workers train quietly, report their steps into a queue, and this process draws
        # one bar over the steps of all models.
        show = config.engine_settings().progress
        quiet = {**values, "engine": {**values["engine"], "progress": False}}
        context = multiprocessing.get_context("spawn")
        steps = context.Queue() if show else None
        with (
            ProcessPoolExecutor(
                config.workers,
                mp_context=context,
                initializer=_set_step_queue,
                initargs=(steps,),
            ) as pool,
            tqdm(
                total=sum(job["steps"] for job in todo),
                desc=f"{len(todo)} models in {config.workers} processes",
                unit="step",
                disable=not show,
                file=sys.stdout,
                dynamic_ncols=True,
                smoothing=0.1,
            ) as bar,
        ):

            def drain(wait_s: float) -> None:
                """Move the queued step reports onto the bar (wait up to wait_s for each)."""
                while steps is not None and bar.n < bar.total:
                    try:
                        bar.update(steps.get(timeout=wait_s) if wait_s else steps.get_nowait())
                    except queues.Empty:
                        return

            pending = {pool.submit(_execute, quiet, todo[i]): i for i in order}
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                drain(0)
                for future in done:
                    results[pending.pop(future)] = future.result()
                    bar.set_postfix_str(f"{len(results)}/{len(todo)} models done")
            drain(2)  # reports still in the pipe
    return [results[i] for i in range(len(todo))]


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
    if isinstance(config, dict):
        config = PowerSpectrumConfig(**config)
    if not isinstance(config, PowerSpectrumConfig):
        raise TypeError(f"config must be PowerSpectrumConfig or dict; got {type(config).__name__}")
    start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        metrics = _run(config, start)
    finally:
        torch.set_num_threads(threads)
    if metrics["is_global_zero"]:
        figures: dict[str, str] = {}
        if config.figures:
            from .figures import draw_figures

            figures = draw_figures(metrics, config, out / "figures")
        metrics["figures"] = figures
        metrics["seconds"] = time.perf_counter() - start
        from .report import write_report

        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (out / "report.md").write_text(write_report(metrics, config), encoding="utf-8")
        metrics["seconds"] = time.perf_counter() - start
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _run(config: PowerSpectrumConfig, start: float) -> dict[str, Any]:
    k_fin = config.k_fin
    jobs = _jobs(config)
    done = _execute_all(config, jobs)
    prior_per_k = _test_mse(_prior_predict(k_fin), config, config.set_size)
    lstsq_per_k = _test_mse(_lstsq_predict(config.lstsq_k, k_fin), config, config.set_size)
    prior_sweep = _size_sweep(_prior_predict(k_fin), config)
    lstsq_sweep = _size_sweep(_lstsq_predict(config.lstsq_k, k_fin), config)
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
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "workers": config.workers,
            "torch_threads": config.threads or torch.get_num_threads(),
            "torch": torch.__version__,
            "malloc_tuned": "MALLOC_MMAP_THRESHOLD_" in os.environ,
        },
        "is_global_zero": all(r["is_global_zero"] for r in done),
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
