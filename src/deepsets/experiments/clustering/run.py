r"""The driver of the amortized-clustering experiment: :func:`run_clustering`.

It trains the networks of Table 3 of the Set Transformer paper (rFF + pooling, rFFp-mean
+ pooling, ISAB(16) + PMA) on the library's Lightning engine, one run per network and
random seed (in worker processes), scores them and the baselines (the oracle, one
fitted Gaussian) on the fixed test set, draws the figures and writes ``report.md``,
``metrics.json`` and ``config.json`` into the run directory.

Training batches are packed (a jagged nested tensor, no padding): with set sizes uniform
on 100..500, padding every batch to its largest set wastes about a third of the rows, and
the packed forward–backward measured 15–40 % faster than padded + mask on one thread
(``docs/study/clustering.md``). Evaluation runs padded + mask; the two agree.

Data flows one way: this module calls the experiment's parts; none of them calls back.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...training import KeepBest, SetModelModule, fit_stream
from .._common import RunDirectory, generator_for, torch_threads
from .._pool import run_jobs, step_callbacks
from .baselines import OneGaussianEstimator, OracleEstimator
from .config import PAPER_LL, ClusteringConfig
from .data import (
    ARCHITECTURES,
    FIGURE_STREAM,
    make_stream_sampler,
    sample_mixtures,
    set_log_likelihood,
)
from .evaluate import evaluate_log_likelihood, evaluate_scores, validation_score
from .figures import draw_figures
from .model import MixtureEstimator, build_model, parameter_count, parse_output
from .report import score_cell, write_report

__all__ = ["MixtureModule", "run_clustering", "summary"]

# Relative cost of one step of every network (measured, one thread, width 128).
_STEP_COST = {"rff": 1.0, "rffp_mean": 1.6, "isab_pma": 4.3}


class MixtureModule(SetModelModule):
    r"""The engine's module with the experiment's loss and schedule.

    .. math::

        \mathcal L = -\frac1B \sum_b \frac1{n_b} \sum_i \log p_{\theta(X_b)}(x_{b,i}),

    the negative log-likelihood per point under the network's mixture, averaged over the
    ``B`` sets (each set weighs the same, whatever its size); Adam at ``lr``, divided by
    10 after ``lr_drop_step`` steps (constant with ``None``), on gradients whose global
    norm is clipped to ``clip_norm`` (not clipped with ``None``).

    Shapes:
        batches ``(x, x)`` with ``x`` a jagged nested ``(B, j, 2)`` tensor, or padded
        ``(x, x, mask)`` with ``x (B, M, 2)`` and ``mask (B, M)``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        lr_drop_step: int | None,
        clip_norm: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.lr_drop_step = lr_drop_step
        self.clip_norm = clip_norm
        self.loss_name = "nll"

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the global gradient norm to ``clip_norm`` (Lightning calls this before
        every optimiser step)."""
        if self.clip_norm is not None:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.clip_norm, gradient_clip_algorithm="norm"
            )

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """The negative log-likelihood per point of the batch; logged as ``loss``."""
        x, _, *rest = batch
        mask = rest[0] if rest else None
        params = parse_output(self.model(x, mask))
        loss = -set_log_likelihood(x, mask, params).mean()
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self) -> Any:
        """Adam, with the learning rate divided by 10 after ``lr_drop_step`` steps."""
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        drop = self.lr_drop_step
        if drop is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 1.0 if step < drop else 0.1
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def _execute(values: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Train and score one network (runs in a worker process when ``workers > 1``)."""
    config = ClusteringConfig(**values)
    architecture, seed = job["architecture"], job["seed"]
    name = f"{architecture}-seed{seed}"
    with torch_threads(config.threads):
        torch.manual_seed(seed)
        model = build_model(architecture, width=config.width, num_inducing=config.num_inducing)
        module = MixtureModule(
            model,
            lr=config.lr,
            lr_drop_step=config.lr_drop_step,
            clip_norm=config.clip_norm,
            max_steps=config.steps,
            hparams={"architecture": architecture, "seed": seed, "width": config.width},
        )
        sample = make_stream_sampler(
            batch_size=config.batch_size,
            seed=seed,
            min_points=config.min_points,
            max_points=config.max_points,
        )
        keep = None
        if config.valid_every:
            keep = KeepBest(validation_score(config), config.valid_every)
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit_stream(
            module,
            sample,
            max_steps=config.steps,
            out_dir=config.out,
            name=name,
            settings=config.engine_settings(),
            resume=config.resume,
            callbacks=[*step_callbacks(), *([keep] if keep else [])],
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        model.eval()
        last_step_ll = evaluate_log_likelihood(MixtureEstimator(model), config)
        best: dict[str, Any] = {}
        if keep is not None and keep.best_state:  # none: a checkpoint saved without scoring
            model.load_state_dict(keep.best_state)
            best = {"best_step": keep.best_step, "valid_ll": -keep.best_score}
        network = MixtureEstimator(model)
        example = network.predict(_figure_dataset(config))
        return {
            "name": name,
            "architecture": architecture,
            "seed": seed,
            "steps": config.steps,
            "steps_trained": result.global_step - result.start_step,
            "parameters": parameter_count(model),
            "test_ll": evaluate_log_likelihood(network, config) if best else last_step_ll,
            "test_ll_last_step": last_step_ll,
            **best,
            "final_loss": result.extra.get("loss"),
            "train_seconds": wall,
            "train_cpu_seconds": cpu,
            "resumed": result.resumed_from is not None,
            "is_global_zero": result.is_global_zero,
            "example_mixture": {
                "weights": example.log_weights[0].exp().tolist(),
                "means": example.means[0].tolist(),
                "sigma": example.sigma[0].tolist(),
            },
        }


def _figure_dataset(config: ClusteringConfig) -> Any:
    """The dataset the figure shows (one draw of its own stream)."""
    generator = generator_for(config.test_seed, FIGURE_STREAM)
    return sample_mixtures(
        1, generator=generator, min_points=config.min_points, max_points=config.max_points
    )


def _spread(values: list[float]) -> dict[str, float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    std = float(tensor.std()) if len(values) > 1 else 0.0
    return {"mean": float(tensor.mean()), "std": std, "min": float(tensor.min())}


def run_clustering(config: ClusteringConfig | dict[str, Any]) -> dict[str, Any]:
    """Run the experiment of ``config`` and write its run directory.

    ``config.out`` receives ``config.json`` (first), ``checkpoints/``, ``logs/``,
    ``figures/``, ``metrics.json`` and ``report.md``. Under DDP only rank 0 writes.

    Returns:
        The metrics (also in ``metrics.json``): ``oracle_ll``, ``one_gaussian_ll``,
        ``rows`` (per architecture: the paper's name, mean/std/min of the test
        log-likelihood over seeds, the paper's value), ``runs`` (every network),
        ``paper``, ``seconds``, ``train_cpu_seconds``, ``machine``, ``figures``.
    """
    config = ClusteringConfig.coerce(config)
    start = time.perf_counter()
    run_dir = RunDirectory.for_config(config)
    jobs = [
        {"architecture": a, "seed": s, "steps": config.steps}
        for a in config.architectures
        for s in config.seeds
    ]
    with torch_threads(config.threads):
        runs = run_jobs(
            _execute,
            config.to_dict(),
            jobs,
            workers=config.workers,
            progress=config.engine_settings().progress,
            cost=lambda job: _STEP_COST[job["architecture"]] * job["steps"],
        )
        oracle_scores = evaluate_scores(OracleEstimator(), config)
        oracle = float(oracle_scores.mean())
        floor = evaluate_log_likelihood(OneGaussianEstimator(), config)
    rows = {}
    for architecture in config.architectures:
        mine = [r for r in runs if r["architecture"] == architecture]
        rows[architecture] = {
            "label": ARCHITECTURES[architecture],
            **_spread([r["test_ll"] for r in mine]),
            "seeds": [r["seed"] for r in mine],
            "per_seed": [r["test_ll"] for r in mine],
            "last_step_per_seed": [r["test_ll_last_step"] for r in mine],
            "best_steps": [r.get("best_step") for r in mine],
            "gap_to_oracle": oracle - sum(r["test_ll"] for r in mine) / len(mine),
            "parameters": mine[0]["parameters"],
            # over the steps this invocation trained (a resumed run trained fewer; None: none)
            "train_cpu_seconds_per_step": sum(r["train_cpu_seconds"] for r in mine) / trained
            if (trained := sum(r["steps_trained"] for r in mine))
            else None,
        }
    metrics: dict[str, Any] = {
        "task": "clustering",
        "preset": config.preset,
        "oracle_ll": oracle,
        "oracle_ll_se": float(oracle_scores.std() / len(oracle_scores) ** 0.5)
        if len(oracle_scores) > 1
        else 0.0,
        "one_gaussian_ll": floor,
        "rows": rows,
        "paper": {k: {"mean": v[0], "std": v[1]} for k, v in PAPER_LL.items()},
        "runs": runs,
        "train_cpu_seconds": sum(r["train_cpu_seconds"] for r in runs),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "workers": config.workers,
            "torch_threads": config.threads or torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "is_global_zero": all(r["is_global_zero"] for r in runs),
    }
    if metrics["is_global_zero"]:
        dataset = _figure_dataset(config)
        figures = draw_figures(metrics, config, run_dir.figures, dataset) if config.figures else {}
        metrics["figures"] = figures
        metrics["seconds"] = time.perf_counter() - start
        run_dir.write_json("metrics.json", metrics)
        run_dir.write_text("report.md", write_report(metrics, config))
    return metrics


def summary(metrics: dict[str, Any], config: ClusteringConfig) -> str | None:
    """The lines ``deepsets clustering`` prints at the end (``None`` off rank 0)."""
    if not metrics.get("is_global_zero", True):
        return None
    rows = "; ".join(f"{name} {score_cell(row)}" for name, row in metrics["rows"].items())
    return (
        f"test LL per point: oracle {metrics['oracle_ll']:.4f}; {rows} "
        f"(one Gaussian {metrics['one_gaussian_ll']:.4f})\n"
        f"{metrics['seconds']:.0f} s; report: {Path(config.out) / 'report.md'}"
    )
