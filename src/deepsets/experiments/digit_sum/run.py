r"""The driver of the digit-sum experiment: :func:`run_digit_sum`.

A model sees a set of digits and predicts their sum,

.. math::

    \hat s(X) = \rho\Big(\sum_{x \in X} \varphi(x)\Big) \approx \sum_{x \in X} \mathrm{digit}(x),

trained on sets of at most ``max_train_size`` (10) digits and tested on sets of every size
``1..max_test_size`` (100). The score at a size is the *exact-sum accuracy*: the fraction
of test sets whose prediction, rounded to the nearest integer, equals the true sum. The
paper's point is that a sum-pooled model generalises to sets ten times larger than any it
was trained on. The model is trained with the L1 loss and a one-cycle learning rate on the
library's Lightning engine (:func:`deepsets.training.fit_stream`).

Reference:
    Zaheer et al., *Deep Sets*, NeurIPS 2017, Section 4.1, https://arxiv.org/abs/1703.06114
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ...training import SetModelModule, fit_stream
from .._common import RunDirectory, torch_threads
from .config import DigitSumConfig
from .data import DigitImages, Variant, load_digit_images, make_stream_sampler
from .evaluate import evaluate_accuracy
from .figures import draw_figure
from .model import build_model
from .report import write_report

__all__ = ["run_digit_sum", "summary"]


def _train_variant(config: DigitSumConfig, variant: str, data: DigitImages | None) -> dict:
    settings = config.resolved(variant)
    torch.manual_seed(config.seed)
    model = build_model(variant, settings["phi_hidden_dims"])
    module = SetModelModule(
        model,
        loss="l1",
        lr=settings["lr"],
        lr_schedule="onecycle",
        max_steps=settings["steps"],
        hparams={"variant": variant, **settings},
    )
    start = time.perf_counter()
    result = fit_stream(
        module,
        make_stream_sampler(variant, config.batch_size, config.max_train_size, config.seed, data),
        max_steps=settings["steps"],
        out_dir=config.out,
        name=variant,
        settings=config.engine_settings(),
        resume=config.resume,
    )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.cpu()
    images = (data.test_images, data.test_labels) if data is not None else None
    scores = evaluate_accuracy(
        model,
        variant,
        range(1, config.max_test_size + 1),
        sets_per_size=config.test_sets,
        seed=config.seed,
        images=images,
    )
    accuracy = {str(n): s["accuracy"] for n, s in scores.items()}
    worst = min(scores, key=lambda n: (scores[n]["accuracy"], n))
    extra: dict[str, Any] = {}
    if data is not None:
        # The same measurement on the training images: the gap shows overfitting.
        seen = evaluate_accuracy(
            model,
            variant,
            sorted({1, config.max_train_size, config.max_test_size}),
            sets_per_size=config.test_sets,
            seed=config.seed,
            images=(data.train_images, data.train_labels),
        )
        extra["train_images_accuracy"] = {str(n): s["accuracy"] for n, s in seen.items()}
        extra["train_images"] = len(data.train_labels)
    return {
        "accuracy": accuracy,
        "mae": {str(n): s["mae"] for n, s in scores.items()},
        "min_accuracy": scores[worst]["accuracy"],
        "min_accuracy_size": worst,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": result.extra.get("loss"),
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - start,
        "global_step": result.global_step,
        "resumed": result.resumed_from is not None,
        "world_size": result.extra.get("world_size", 1),
        "is_global_zero": result.is_global_zero,
        **settings,
        **extra,
    }


def run_digit_sum(config: DigitSumConfig | dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate every variant of ``config``; write the run directory.

    ``config.out`` receives ``config.json``, ``metrics.json``, ``report.md``,
    ``figures/accuracy.{png,svg}`` (when matplotlib is installed), ``checkpoints/`` and
    ``logs/``. Under DDP only rank 0 writes the report files.

    Returns:
        The metrics: ``{"task", "seconds", "max_train_size", "variants": {variant:
        {"accuracy": {size: acc}, "mae": {size: err}, "min_accuracy", ...}}}``; sizes are
        string keys, as in ``metrics.json``.
    """
    config = DigitSumConfig.coerce(config)
    start = time.perf_counter()
    run_dir = RunDirectory.for_config(config)
    data = load_digit_images() if Variant.IMAGE.value in config.variants else None
    with torch_threads(config.threads):
        variants = {
            variant: _train_variant(config, variant, data if variant == "image" else None)
            for variant in config.variants
        }
    metrics: dict[str, Any] = {
        "task": "digit-sum",
        "seconds": time.perf_counter() - start,
        "max_train_size": config.max_train_size,
        "max_test_size": config.max_test_size,
        "test_sets": config.test_sets,
        "variants": variants,
    }
    if all(v["is_global_zero"] for v in variants.values()):
        figure = draw_figure(metrics, run_dir.figures)
        run_dir.write_text("report.md", write_report(config, metrics, figure))
        metrics["seconds"] = time.perf_counter() - start
        run_dir.write_json("metrics.json", metrics)
    return metrics


def summary(metrics: dict[str, Any], config: DigitSumConfig) -> str | None:
    """The lines ``deepsets digit-sum`` prints at the end (``None`` off rank 0)."""
    if not all(v["is_global_zero"] for v in metrics["variants"].values()):
        return None
    lines = []
    top = str(config.max_test_size)
    for variant, result in metrics["variants"].items():
        lines.append(
            f"{variant}: accuracy at size 1 {result['accuracy']['1']:.1%}, "
            f"at size {top} {result['accuracy'][top]:.1%}, "
            f"lowest {result['min_accuracy']:.1%} (size {result['min_accuracy_size']}); "
            f"trained in {result['train_seconds']:.0f} s"
        )
    lines.append(f"report: {Path(config.out) / 'report.md'}")
    return "\n".join(lines)
