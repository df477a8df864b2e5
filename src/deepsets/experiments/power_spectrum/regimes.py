r"""The regime part of the power-spectrum study, for the driver (:mod:`.run`).

For every regime of :data:`~.data.REGIMES` the study measures, on one fixed test draw:
the prior, least squares and ridge with ``K`` and λ chosen on a separate validation draw,
the Bayes-optimal floor (:mod:`.bayes`), and each network design
(:class:`~.designs.GenericSpectrumNet`, :class:`~.designs.StructuredSpectrumNet`) trained
by the library's engine (:func:`fit_network`, also used for the networks of the blog post
"Permutation-equivariant neural networks for power spectrum estimation"). Figure 6 sweeps
the set size ``N`` at the underdetermined regime's ``k_max``.

Every function here runs inside one pool job (:func:`execute_regime_job`) or collects
their results (:func:`collect_regimes`); data flows one way, as in the driver.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from ...training import SetModelModule, fit_stream
from .baselines import PriorEstimator, ValidatedLeastSquares, default_k_grid, select_least_squares
from .bayes import BayesEstimator
from .config import PowerSpectrumConfig, design_settings
from .data import (
    REGIMES,
    Design,
    Encoding,
    PowerSpectrumBatch,
    Regime,
    make_regime_sampler,
    regime_sets,
)
from .evaluate import Estimator, error_summary, regret_fraction, squared_errors
from .model import NetworkEstimator, build_design, parameter_count

__all__ = [
    "FLOOR_REGIME",
    "collect_regimes",
    "execute_regime_job",
    "fit_network",
    "regime_cost",
    "regime_jobs",
]

#: The regime whose ``k_max`` and ``K_fin`` figure 6 sweeps ``N`` at.
FLOOR_REGIME = "underdetermined"


def fit_network(
    config: PowerSpectrumConfig,
    model: nn.Module,
    sample: Any,
    *,
    name: str,
    steps: int,
    lr: float,
    lr_schedule: str,
    hparams: dict[str, Any],
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train ``model`` on the stream ``sample`` with :func:`deepsets.training.fit_stream`
    (checkpoints, resume, logs under ``config.out``); returns the run's facts, among them
    the wall and CPU seconds (``time.process_time`` of this process) of training."""
    module = SetModelModule(
        model, loss="mse", lr=lr, lr_schedule=lr_schedule, max_steps=steps, hparams=hparams
    )
    start, cpu = time.perf_counter(), time.process_time()
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
    return {
        "name": name,
        **hparams,
        "parameters": parameter_count(model),
        "train_seconds": time.perf_counter() - start,
        "train_cpu_seconds": time.process_time() - cpu,
        "final_loss": result.extra.get("loss"),
        "resumed": result.resumed_from is not None,
        "is_global_zero": result.is_global_zero,
        "checkpoint": str(result.checkpoint),
    }


def _sweep_network(config: PowerSpectrumConfig) -> tuple[str, int] | None:
    """The network evaluated at every size of figure 6: the structured design (else the
    first) trained on :data:`FLOOR_REGIME` with the first seed."""
    if not config.floor_sizes or FLOOR_REGIME not in config.regimes:
        return None
    if not config.designs:
        return None
    structured = Design.STRUCTURED.value
    design = structured if structured in config.designs else config.designs[0]
    return design, config.regime_seeds[0]


def regime_jobs(config: PowerSpectrumConfig) -> list[dict[str, Any]]:
    """One reference job per regime (the baselines and the floor), one training job per
    regime × design × seed, and the baselines of figure 6."""
    jobs: list[dict[str, Any]] = []
    sweep = _sweep_network(config)
    for regime in config.regimes:
        jobs.append({"kind": "regime-reference", "name": f"reference-{regime}", "steps": 0})
        jobs[-1]["regime"] = regime
        for design in config.designs:
            budget = design_settings(getattr(config, design), regime, name=design)
            for seed in config.regime_seeds:
                jobs.append(
                    {
                        "kind": "regime-net",
                        "name": f"{design}-{regime}-seed{seed}",
                        "regime": regime,
                        "design": design,
                        "seed": seed,
                        "floor_sweep": regime == FLOOR_REGIME and sweep == (design, seed),
                        **asdict(budget),
                    }
                )
    if sweep is not None:
        jobs.append({"kind": "floor-sweep", "name": "floor-sweep", "steps": 0})
    return jobs


def regime_cost(job: dict[str, Any]) -> float:
    """A rough relative cost (CPU-seconds × 1e6, as the driver's other costs)."""
    if job["kind"] == "regime-reference":
        regime = REGIMES[job["regime"]]
        return 1e6 * (1 + regime.set_size**3 / 3e6)
    if job["kind"] == "floor-sweep":
        return 3e7
    regime, width = REGIMES[job["regime"]], 2 * job["num_frequencies"]
    per_set = regime.set_size * width * (width + 3 * max(job["hidden"])) + width**3
    return job["steps"] * job["batch_size"] * per_set * 5e-4


def _errors(estimator: Estimator, regime: Regime, count: int, seed: int) -> torch.Tensor:
    """Squared errors ``(B, k_fin)`` on the fixed test draw of ``regime``."""
    test = regime_sets(regime, count, stream="test", seed=seed)
    return squared_errors(estimator.predict, test, regime.k_fin)


def _row(estimator: Estimator, test: PowerSpectrumBatch, k_fin: int, cpu: float) -> dict[str, Any]:
    """One estimator's errors on ``test``; ``cpu``: the process time when its work began
    (before the validation of a validated fit)."""
    errors = squared_errors(estimator.predict, test, k_fin)
    row: dict[str, Any] = {
        "per_k_mse": errors.mean(0).tolist(),
        "set_errors": errors.mean(1).tolist(),
        "cpu_seconds": time.process_time() - cpu,
    }
    if isinstance(estimator, ValidatedLeastSquares):
        row.update(k_fit=estimator.k_fit, ridge=estimator.ridge, valid_mse=estimator.valid_mse)
    return row


def _validated(
    regime: Regime, count: int, seed: int, ridges: Sequence[float] = ()
) -> ValidatedLeastSquares | None:
    """Least squares (or ridge, with ``ridges``) with ``K`` chosen on the validation draw;
    ``None`` when no full-rank fit exists (``N < 2 K_fin + 1``) and no ridge is given."""
    grid = default_k_grid(regime.k_fin, regime.set_size, regime.k_max)
    if ridges and regime.k_max <= 128:
        grid = sorted({*grid, regime.k_max})
    if not ridges and 2 * grid[0] + 1 > regime.set_size:
        return None
    valid = regime_sets(regime, count, stream="valid", seed=seed)
    return select_least_squares(valid, regime.k_fin, k_grid=grid, ridges=ridges or (0.0,))


def _references(config: PowerSpectrumConfig, regime: Regime) -> dict[str, Any]:
    """The rows of the baselines and the floor: prior, validated least squares and ridge
    (chosen on ``valid_sets`` validation functions), Bayes."""
    test = regime_sets(regime, config.regime_test_sets, stream="test", seed=config.test_seed)
    rows: dict[str, Any] = {}
    makers: dict[str, Any] = {
        "prior": lambda: PriorEstimator(regime.k_fin),
        "lstsq": lambda: _validated(regime, config.valid_sets, config.test_seed),
        "ridge": lambda: _validated(regime, config.valid_sets, config.test_seed, config.ridges),
        "bayes": lambda: BayesEstimator(k_max=regime.k_max, k_fin=regime.k_fin, noise=regime.noise),
    }
    for name, make in makers.items():
        if name == "ridge" and not config.ridges:
            continue
        cpu = time.process_time()
        estimator = make()
        if estimator is not None:
            rows[name] = _row(estimator, test, regime.k_fin, cpu)
    return rows


def _floor_sizes(config: PowerSpectrumConfig) -> list[Regime]:
    return [REGIMES[FLOOR_REGIME].with_set_size(n) for n in sorted(set(config.floor_sizes))]


def _floor_sweep_baselines(config: PowerSpectrumConfig) -> dict[str, Any]:
    """Figure 6's baselines: prior, validated least squares (``None`` where no full-rank
    fit exists) and Bayes at every size, ``floor_sets`` functions each."""
    out: dict[str, list[Any]] = {"sizes": [], "prior": [], "lstsq": [], "lstsq_k": []}
    out["bayes"] = []
    seed, count = config.test_seed, config.floor_sets
    for regime in _floor_sizes(config):
        lstsq = _validated(regime, count, seed)
        out["sizes"].append(regime.set_size)
        out["prior"].append(
            float(_errors(PriorEstimator(regime.k_fin), regime, count, seed).mean())
        )
        out["lstsq"].append(
            None if lstsq is None else float(_errors(lstsq, regime, count, seed).mean())
        )
        out["lstsq_k"].append(None if lstsq is None else lstsq.k_fit)
        bayes = BayesEstimator(k_max=regime.k_max, k_fin=regime.k_fin, noise=regime.noise)
        out["bayes"].append(float(_errors(bayes, regime, count, seed).mean()))
    return out


def execute_regime_job(
    config: PowerSpectrumConfig, job: dict[str, Any], callbacks: Sequence[Any] = ()
) -> dict[str, Any]:
    """Run one job of :func:`regime_jobs` (in a worker process when ``workers > 1``)."""
    if job["kind"] == "floor-sweep":
        return {**job, **_floor_sweep_baselines(config)}
    regime = REGIMES[job["regime"]]
    if job["kind"] == "regime-reference":
        return {**job, "rows": _references(config, regime)}
    torch.manual_seed(job["seed"])
    model = build_design(
        job["design"],
        k_fin=regime.k_fin,
        num_frequencies=job["num_frequencies"],
        hidden=job["hidden"],
        rho_hidden=job["rho_hidden"],
    )
    keys = ("regime", "design", "seed", "steps", "batch_size", "lr", "num_frequencies")
    info = fit_network(
        config,
        model,
        make_regime_sampler(regime, batch_size=job["batch_size"], seed=job["seed"]),
        name=job["name"],
        steps=job["steps"],
        lr=job["lr"],
        lr_schedule="cosine",
        hparams={key: job[key] for key in keys},
        callbacks=callbacks,
    )
    network = NetworkEstimator(model, Encoding.RAW)
    test = regime_sets(regime, config.regime_test_sets, stream="test", seed=config.test_seed)
    info.update(kind=job["kind"], **_row(network, test, regime.k_fin, time.process_time()))
    info["eval_cpu_seconds"] = info.pop("cpu_seconds")
    if job["floor_sweep"]:
        info["floor_sweep"] = [
            float(_errors(network, r, config.floor_sets, config.test_seed).mean())
            for r in _floor_sizes(config)
        ]
    return info


def _spread(values: list[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).std()) if len(values) > 1 else 0.0


def _network_entry(runs: list[dict[str, Any]], bayes: torch.Tensor) -> dict[str, Any]:
    per_seed = []
    for run in runs:
        summary = error_summary(torch.tensor(run["set_errors"]), bayes)
        per_seed.append(
            {"seed": run["seed"], **summary, "train_cpu_seconds": run["train_cpu_seconds"]}
        )
    mses = [s["mse"] for s in per_seed]
    count = len(runs)
    return {
        "mse": sum(mses) / count,
        "mse_sd": _spread(mses),
        "minus_bayes": sum(s["minus_bayes"] for s in per_seed) / count,
        # one seed: its paired standard error over the test functions
        **({"minus_bayes_se": per_seed[0]["minus_bayes_se"]} if count == 1 else {}),
        "per_k_mse": [sum(v) / count for v in zip(*(r["per_k_mse"] for r in runs), strict=True)],
        "cpu_seconds": sum(r["train_cpu_seconds"] for r in runs) / count,
        "parameters": runs[0]["parameters"],
        "steps": runs[0]["steps"],
        "batch_size": runs[0]["batch_size"],
        "num_frequencies": runs[0]["num_frequencies"],
        "seeds": per_seed,
    }


def collect_regimes(config: PowerSpectrumConfig, done: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``regimes`` section of the metrics (and ``floor_sweep`` for figure 6): per
    regime and estimator the test MSE (mean and sd over seeds for networks), the per-k MSE,
    the paired difference to Bayes, the regret fraction, CPU-seconds, and the winner (the
    estimator with the lowest MSE, the Bayes floor aside)."""
    section: dict[str, Any] = {}
    for name in config.regimes:
        ref = next(r for r in done if r["kind"] == "regime-reference" and r["regime"] == name)
        bayes = torch.tensor(ref["rows"]["bayes"]["set_errors"])
        estimators: dict[str, Any] = {}
        for key, row in ref["rows"].items():
            errors = torch.tensor(row["set_errors"])
            summary = error_summary(errors, None if key == "bayes" else bayes)
            extra = {k: v for k, v in row.items() if k != "set_errors"}
            estimators[key] = {**summary, "mse_sd": 0.0, **extra}
        for design in config.designs:
            runs = [r for r in done if r.get("design") == design and r["regime"] == name]
            estimators[design] = _network_entry(runs, bayes)
        prior, floor = estimators["prior"]["mse"], estimators["bayes"]["mse"]
        for entry in estimators.values():
            entry["regret"] = regret_fraction(entry["mse"], prior, floor)
        contenders = {k: v["mse"] for k, v in estimators.items() if k != "bayes"}
        section[name] = {
            **asdict(REGIMES[name]),
            "test_sets": config.regime_test_sets,
            "valid_sets": config.valid_sets,
            "estimators": estimators,
            "winner": min(contenders, key=contenders.__getitem__),
        }
    return section


def collect_floor_sweep(config: PowerSpectrumConfig, done: list[dict[str, Any]]) -> Any:
    """Figure 6's numbers: the baselines' MSE per size and the network's, or ``None``."""
    baselines = next((r for r in done if r["kind"] == "floor-sweep"), None)
    network = next((r for r in done if r.get("floor_sweep")), None)
    if baselines is None or network is None:
        return None
    keep = ("sizes", "prior", "lstsq", "lstsq_k", "bayes")
    return {
        **{key: baselines[key] for key in keep},
        "network": network["floor_sweep"],
        "network_name": network["name"],
        "sets": config.floor_sets,
        "k_max": REGIMES[FLOOR_REGIME].k_max,
        "k_fin": REGIMES[FLOOR_REGIME].k_fin,
        "trained_set_size": REGIMES[FLOOR_REGIME].set_size,
    }
