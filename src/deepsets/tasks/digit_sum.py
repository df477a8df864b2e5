r"""Sum of digits: the first experiment of the Deep Sets paper, as ``deepsets digit-sum``.

A model sees a set of digits and predicts their sum,

.. math::

    \hat s(X) = \rho\Big(\sum_{x \in X} \varphi(x)\Big) \approx \sum_{x \in X} \mathrm{digit}(x),

trained on sets of at most ``max_train_size`` (10) digits and tested on sets of every size
``1..max_test_size`` (100). The score at a size is the *exact-sum accuracy*: the fraction
of test sets whose prediction, rounded to the nearest integer, equals the true sum. The
paper's point is that a sum-pooled model generalises to sets ten times larger than any it
was trained on.

Two variants share everything but φ's input:

* ``integer``: a digit is its value, one-hot encoded (so φ's first layer is an embedding).
* ``image``: a digit is an 8×8 grey image from scikit-learn's bundled
  :func:`sklearn.datasets.load_digits` (1,797 images, no download); training sets draw
  from two thirds of the images, test sets from the held-out third. The model never sees
  a label, only sums.

The model is :class:`deepsets.DeepSetsInvariant` with sum pooling and a linear ρ, trained
with the L1 loss and a one-cycle learning rate on the library's Lightning engine
(:func:`deepsets.training.fit_stream`); every batch is a pure function of
``(seed, step, rank)``, so ``--resume`` is exact and DDP ranks draw different sets.

Reference:
    Zaheer et al., *Deep Sets*, NeurIPS 2017, Section 4.1, https://arxiv.org/abs/1703.06114
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import DeepSetsInvariant
from .._validation import check_dims, resolve_option
from ._config_files import read_config_file
from ._seeding import generator_for

__all__ = [
    "VARIANTS",
    "VARIANT_DEFAULTS",
    "DigitImages",
    "DigitSumConfig",
    "Variant",
    "add_subparser",
    "build_model",
    "config_from_args",
    "evaluate_accuracy",
    "load_digit_images",
    "run_digit_sum",
    "sample_digit_sets",
]

NUM_DIGITS = 10
IMAGE_PIXELS = 64
# Stream ids, so training and test sets never share random numbers.
TRAIN_STREAM = 0
TEST_STREAM = 1
# The held-out image split does not depend on the run's seed.
IMAGE_SPLIT_SEED = 2017
REPORT_SIZES = (1, 2, 3, 5, 10, 11, 15, 20, 30, 50, 75, 100)


class Variant(str, Enum):
    """How a digit is given to the model."""

    INTEGER = "integer"
    IMAGE = "image"


VARIANTS = tuple(member.value for member in Variant)

#: Per-variant defaults of φ's widths, steps and peak learning rate.
VARIANT_DEFAULTS: dict[Variant, dict[str, Any]] = {
    Variant.INTEGER: {"phi_hidden_dims": [32], "steps": 600, "lr": 3e-2},
    Variant.IMAGE: {"phi_hidden_dims": [128, 64], "steps": 5000, "lr": 1e-2},
}


@dataclass
class DigitImages:
    """The 8×8 digit images of :func:`sklearn.datasets.load_digits`, split in two.

    Shapes:
        - ``train_images``: ``(n_train, 64)`` pixel values in ``[0, 1]``
        - ``train_labels``: ``(n_train,)`` int64 digits
        - ``test_images``, ``test_labels``: the held-out third, likewise
    """

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor


def load_digit_images() -> DigitImages:
    """Load scikit-learn's bundled digits (no download) and split them 2:1, fixed split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the image variant needs scikit-learn: pip install "deepsets[train]"'
        ) from error
    digits = load_digits()
    images = torch.as_tensor(digits.data, dtype=torch.float32) / 16.0
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=generator_for(IMAGE_SPLIT_SEED))
    n_test = len(labels) // 3
    test, train = order[:n_test], order[n_test:]
    return DigitImages(images[train], labels[train], images[test], labels[test])


def sample_digit_sets(
    variant: str,
    batch_size: int,
    max_size: int,
    generator: torch.Generator,
    *,
    images: tuple[Tensor, Tensor] | None = None,
    size: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Random sets of digits, padded to ``max_size``, and their sums.

    Set sizes are uniform on ``0..max_size`` (or all equal to ``size``); digits are
    uniform on ``0..9`` (``integer``) or uniformly drawn images of ``images`` (``image``).
    The target is :math:`\sum_{i < n_b} d_{b,i}`.

    Shapes:
        - ``images``: ``((P, 64), (P,))`` image pool and its labels (``image`` only)
        - returns ``features`` ``(B, max_size, 10)`` one-hot or ``(B, max_size, 64)``
          pixels, ``mask`` ``(B, max_size)`` bool, ``target`` ``(B, 1)`` float sums

    Raises:
        ValueError: for an unknown ``variant``, a negative size, ``size > max_size``, or
            the ``image`` variant without ``images``.
    """
    kind = resolve_option(variant, Variant, name="variant")
    if max_size < 0:
        raise ValueError(f"max_size must be >= 0; got {max_size!r}")
    if size is not None and not 0 <= size <= max_size:
        raise ValueError(f"size must be in [0, max_size={max_size}]; got {size!r}")
    device = generator.device
    if size is None:
        sizes = torch.randint(0, max_size + 1, (batch_size,), generator=generator, device=device)
    else:
        sizes = torch.full((batch_size,), size, device=device)
    mask = torch.arange(max_size, device=device) < sizes[:, None]
    if kind is Variant.INTEGER:
        digits = torch.randint(
            0, NUM_DIGITS, (batch_size, max_size), generator=generator, device=device
        )
        features = nn.functional.one_hot(digits, NUM_DIGITS).float()
    else:
        if images is None:
            raise ValueError("images must be given for variant='image'; got None")
        pool, labels = images
        index = torch.randint(
            0, len(labels), (batch_size, max_size), generator=generator, device=device
        )
        features = pool[index]
        digits = labels[index]
    target = (digits * mask).sum(dim=1, keepdim=True).float()
    return features, mask, target


def build_model(variant: str, phi_hidden_dims: Sequence[int]) -> DeepSetsInvariant:
    r"""The digit-sum model :math:`\hat s(X) = w^\top \sum_{x \in X} \varphi(x) + b`.

    φ is an MLP of widths ``phi_hidden_dims`` (``Linear → ReLU`` each) on one digit, the
    pooling is a masked sum, and ρ is a single linear map to one output: a linear ρ stays
    right for sums far larger than those seen in training.

    Shapes:
        - input ``(B, M, 10)`` one-hot digits (``integer``) or ``(B, M, 64)`` pixels
          (``image``), mask ``(B, M)``
        - output ``(B, 1)``: the predicted sum
    """
    kind = resolve_option(variant, Variant, name="variant")
    input_dim = NUM_DIGITS if kind is Variant.INTEGER else IMAGE_PIXELS
    return DeepSetsInvariant(
        input_dim=input_dim,
        phi_hidden_dims=list(phi_hidden_dims),
        rho_hidden_dims=[],
        output_dim=1,
        pool_type="sum",
    )


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    variant: str,
    sizes: Sequence[int],
    *,
    sets_per_size: int,
    seed: int,
    images: tuple[Tensor, Tensor] | None = None,
    chunk_elements: int = 200_000,
) -> dict[int, dict[str, float]]:
    r"""Exact-sum accuracy and mean absolute error of ``model`` at every set size.

    .. math::

        \mathrm{acc}(n) = \frac{1}{T}\sum_{t=1}^{T}
        \big[\operatorname{round}(\hat s(X_t)) = s(X_t)\big], \qquad
        \mathrm{mae}(n) = \frac{1}{T}\sum_{t=1}^{T} \big|\hat s(X_t) - s(X_t)\big|

    over ``T = sets_per_size`` test sets :math:`X_t` of ``n`` digits.

    The test sets of size ``n`` are a fixed function of ``(seed, n)``, drawn on the CPU
    (the same on every machine) and evaluated on the model's device.

    Shapes:
        - ``model``: ``(B, n, d)`` sets and ``(B, n)`` masks → ``(B, 1)`` sums
        - ``images``: ``((P, 64), (P,))`` the image pool to draw from (``image`` only)

    Returns:
        ``{n: {"accuracy": acc(n), "mae": mae(n)}}`` for each ``n`` in ``sizes``.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        generator = generator_for(seed, TEST_STREAM, size)
        features, mask, target = sample_digit_sets(
            variant, sets_per_size, size, generator, images=images, size=size
        )
        hits = 0.0
        error = 0.0
        step = max(1, chunk_elements // max(1, size))
        for start in range(0, sets_per_size, step):
            part = slice(start, start + step)
            prediction = model(features[part].to(device), mask[part].to(device)).cpu()
            hits += float((prediction.round() == target[part]).sum())
            error += float((prediction - target[part]).abs().sum())
        results[int(size)] = {"accuracy": hits / sets_per_size, "mae": error / sets_per_size}
    model.train(was_training)
    return results


@dataclass
class DigitSumConfig:
    """Every setting of ``deepsets digit-sum`` (each is also a flag and a config entry).

    Attributes:
        variants: which variants to run, from ``"integer"`` and ``"image"``.
        out: the run directory.
        seed: seeds the model's initialisation, the training stream and the test sets.
        steps: optimiser steps; ``None`` takes the variant's default (600 integer,
            5000 image).
        batch_size: sets per step (per DDP process).
        max_train_size: training sets have ``0..max_train_size`` digits.
        max_test_size: accuracy is measured at every size ``1..max_test_size``.
        test_sets: test sets per size.
        lr: peak one-cycle learning rate; ``None`` takes the variant's default.
        phi_hidden_dims: φ's widths; ``None`` takes the variant's default
            (``[32]`` integer, ``[128, 64]`` image).
        resume: continue interrupted training from the checkpoints in ``out``.
        threads: torch CPU threads during the run (restored afterwards). The models are
            tiny, and on a busy machine one thread is many times faster than several;
            ``None`` keeps torch's setting.
        engine: Lightning settings (see :class:`deepsets.training.EngineSettings`),
            as a dict of its fields.
    """

    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    out: str = "runs/digit-sum"
    seed: int = 0
    steps: int | None = None
    batch_size: int = 128
    max_train_size: int = 10
    max_test_size: int = 100
    test_sets: int = 1000
    lr: float | None = None
    phi_hidden_dims: list[int] | None = None
    resume: bool = False
    threads: int | None = 1
    engine: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.variants, str):
            self.variants = [self.variants]
        if not self.variants:
            raise ValueError(f"variants must name at least one of {VARIANTS}; got []")
        self.variants = [resolve_option(v, Variant, name="variants").value for v in self.variants]
        for name in ("batch_size", "max_train_size", "max_test_size", "test_sets"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if self.steps is not None and (
            isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1
        ):
            raise ValueError(f"steps must be a positive int or None; got {self.steps!r}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a number > 0 or None; got {self.lr!r}")
        if self.phi_hidden_dims is not None:
            self.phi_hidden_dims = check_dims(self.phi_hidden_dims, name="phi_hidden_dims")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"threads must be a positive int or None; got {self.threads!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int; got {self.seed!r}")
        if not isinstance(self.engine, dict):
            raise TypeError(f"engine must be a dict; got {type(self.engine).__name__}")
        self.engine_settings()  # fail early on bad engine settings

    def engine_settings(self) -> Any:
        """The :class:`deepsets.training.EngineSettings` of ``engine``."""
        from ..training import EngineSettings

        return EngineSettings.from_dict(self.engine)

    def resolved(self, variant: str) -> dict[str, Any]:
        """The training settings of ``variant`` with the variant defaults filled in."""
        defaults = VARIANT_DEFAULTS[Variant(variant)]
        return {
            "steps": self.steps if self.steps is not None else defaults["steps"],
            "lr": float(self.lr if self.lr is not None else defaults["lr"]),
            "phi_hidden_dims": list(
                self.phi_hidden_dims
                if self.phi_hidden_dims is not None
                else defaults["phi_hidden_dims"]
            ),
        }

    @classmethod
    def from_file(cls, path: str | Path) -> DigitSumConfig:
        """Read a JSON (or, by suffix, TOML) config file holding (some of) the fields."""
        return cls(**read_config_file(path, [f.name for f in fields(cls)]))


def _sampler(
    variant: str, batch_size: int, max_size: int, seed: int, data: DigitImages | None
) -> Callable[[int, int, torch.device], tuple[Tensor, Tensor, Tensor]]:
    """The training stream ``(step, rank, device) -> (features, target, mask)``."""
    pools: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def sample(step: int, rank: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        images = None
        if data is not None:
            if device not in pools:
                pools[device] = (data.train_images.to(device), data.train_labels.to(device))
            images = pools[device]
        generator = generator_for(seed, TRAIN_STREAM, rank, step, device=device)
        features, mask, target = sample_digit_sets(
            variant, batch_size, max_size, generator, images=images
        )
        return features, target, mask

    return sample


def _train_variant(config: DigitSumConfig, variant: str, data: DigitImages | None) -> dict:
    from ..training import SetModelModule, fit_stream

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
        _sampler(variant, config.batch_size, config.max_train_size, config.seed, data),
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
    if isinstance(config, dict):
        config = DigitSumConfig(**config)
    if not isinstance(config, DigitSumConfig):
        raise TypeError(f"config must be DigitSumConfig or dict; got {type(config).__name__}")
    start = time.perf_counter()
    out = Path(config.out)
    data = load_digit_images() if Variant.IMAGE.value in config.variants else None
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        variants = {
            variant: _train_variant(config, variant, data if variant == "image" else None)
            for variant in config.variants
        }
    finally:
        torch.set_num_threads(threads)
    metrics: dict[str, Any] = {
        "task": "digit-sum",
        "seconds": time.perf_counter() - start,
        "max_train_size": config.max_train_size,
        "max_test_size": config.max_test_size,
        "test_sets": config.test_sets,
        "variants": variants,
    }
    if all(v["is_global_zero"] for v in variants.values()):
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
        figure = _draw_figure(metrics, out / "figures")
        (out / "report.md").write_text(_report(config, metrics, figure), encoding="utf-8")
        metrics["seconds"] = time.perf_counter() - start
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _draw_figure(metrics: dict[str, Any], directory: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    directory.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for variant, result in metrics["variants"].items():
        sizes = [int(n) for n in result["accuracy"]]
        ax.plot(sizes, list(result["accuracy"].values()), label=variant)
    ax.axvspan(0, metrics["max_train_size"], color="0.9", label="training sizes")
    ax.set_xlabel("set size (digits)")
    ax.set_ylabel("exact-sum accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Sum of digits: trained on ≤ {metrics['max_train_size']} digits")
    ax.legend(loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    for suffix in ("png", "svg"):
        fig.savefig(directory / f"accuracy.{suffix}", dpi=120)
    plt.close(fig)
    return "figures/accuracy.png"


def _report(config: DigitSumConfig, metrics: dict[str, Any], figure: str | None) -> str:
    variants = metrics["variants"]
    sizes = [n for n in REPORT_SIZES if n <= config.max_test_size]
    if config.max_test_size not in sizes:
        sizes.append(config.max_test_size)
    lines = [
        "# Sum of digits",
        "",
        f"Trained on sets of 0–{config.max_train_size} digits, tested on "
        f"{config.test_sets} sets of every size 1–{config.max_test_size}. Exact-sum "
        "accuracy: the rounded prediction equals the true sum.",
        "",
        "| variant | φ widths | steps | parameters | train s | eval s | final L1 loss "
        "| min accuracy (size) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, r in variants.items():
        loss = "n/a" if r["final_loss"] is None else f"{r['final_loss']:.4f}"
        lines.append(
            f"| {variant} | {r['phi_hidden_dims']} | {r['steps']} | {r['parameters']} "
            f"| {r['train_seconds']:.1f} | {r['eval_seconds']:.1f} | {loss} "
            f"| {r['min_accuracy']:.1%} ({r['min_accuracy_size']}) |"
        )
    lines += ["", "## Accuracy per set size", ""]
    lines.append(
        "| size | " + " | ".join(f"{v} accuracy | {v} mean abs. error" for v in variants) + " |"
    )
    lines.append("|---" * (1 + 2 * len(variants)) + "|")
    for n in sizes:
        cells = [f"{r['accuracy'][str(n)]:.1%} | {r['mae'][str(n)]:.2f}" for r in variants.values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    image = variants.get("image")
    if figure is not None:
        lines += ["", f"![accuracy per set size]({figure})"]
    lines += ["", "## Against the paper", ""]
    if "integer" in variants:
        r = variants["integer"]
        verdict = "holds" if r["min_accuracy"] >= 0.95 else "does not hold here"
        lines.append(
            f"- Integer digits: the paper reports that Deep Sets keeps near-perfect accuracy "
            f"up to 100 digits after training on at most 10. Here the lowest accuracy over "
            f"sizes 1–{config.max_test_size} is {r['min_accuracy']:.1%}: the claim {verdict}."
        )
    if image is not None:
        top = str(config.max_test_size)
        lines.append(
            f"- Image digits: accuracy falls with set size, as in the paper's image "
            f"experiment: the model must read every digit, and the errors of its readings "
            f"add up. A single held-out image is read correctly "
            f"{image['accuracy']['1']:.1%} of the time; at size {top} the exact sum is "
            f"right {image['accuracy'][top]:.1%} of the time, with a mean absolute error "
            f"of {image['mae'][top]:.1f}."
        )
        seen = image["train_images_accuracy"]
        lines.append(
            f"- The same test on sets of *training* images scores {seen['1']:.1%} at size 1 "
            f"and {seen[top]:.1%} at size {top}: the gap to the held-out images is "
            f"overfitting to the {image['train_images']:,} training images; more images "
            f"would narrow it."
        )
    lines += [
        "",
        f"Total wall time {metrics['seconds']:.0f} s; configuration in `config.json`, "
        "numbers in `metrics.json`, checkpoints in `checkpoints/`, losses in `logs/`.",
        "",
    ]
    return "\n".join(lines)


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``digit-sum`` on a ``parser.add_subparsers()`` object; sets ``func``.

    ``func(args)`` runs the experiment and returns 0. Flags override the ``--config``
    JSON or TOML file, which overrides the defaults of :class:`DigitSumConfig`.
    """
    from ..training import add_engine_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "digit-sum",
        help="sum of digits: train on sets of <= 10 digits, test up to 100",
        description=(
            "Train a sum-pooled Deep Sets model to add up sets of digits (integers or "
            "8x8 images) and report exact-sum accuracy per set size."
        ),
    )
    parser.add_argument("--config", default=None, help="JSON or TOML file of DigitSumConfig fields")
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        default=None,
        help=f"one of {', '.join(VARIANTS)}; repeat for several (default: both)",
    )
    parser.add_argument("--out", default=None, help="run directory (runs/digit-sum)")
    parser.add_argument(
        "--resume",
        action="store_const",
        const=True,
        default=None,
        help="continue from the checkpoints in --out (exactly where the run stopped)",
    )
    parser.add_argument("--seed", type=int, default=None, help="model, data and test seed (0)")
    parser.add_argument("--steps", type=int, default=None, help="600 integer, 5000 image")
    parser.add_argument("--batch-size", type=int, default=None, help="sets per step (128)")
    parser.add_argument("--max-train-size", type=int, default=None, help="10")
    parser.add_argument("--max-test-size", type=int, default=None, help="100")
    parser.add_argument("--test-sets", type=int, default=None, help="sets per size (1000)")
    parser.add_argument("--lr", type=float, default=None, help="peak LR (3e-2 integer, 1e-2 image)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1; 0 = torch's choice)"
    )
    parser.add_argument(
        "--phi-hidden-dims",
        type=int,
        nargs="+",
        default=None,
        help="widths of phi ([32] integer, [128, 64] image)",
    )
    add_engine_arguments(parser)
    parser.set_defaults(func=_main)
    return parser


_FLAG_FIELDS = (
    "variants",
    "out",
    "resume",
    "seed",
    "steps",
    "batch_size",
    "max_train_size",
    "max_test_size",
    "test_sets",
    "lr",
    "phi_hidden_dims",
    "threads",
)


def config_from_args(args: argparse.Namespace) -> DigitSumConfig:
    """The :class:`DigitSumConfig` of parsed ``digit-sum`` flags (and ``--config``)."""
    from ..training import engine_settings_from_args

    base = DigitSumConfig.from_file(args.config) if args.config else DigitSumConfig()
    values = asdict(base)
    for name in _FLAG_FIELDS:
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    if values["threads"] == 0:
        values["threads"] = None
    engine = engine_settings_from_args(args, base.engine_settings())
    values["engine"] = {
        key: value for key, value in asdict(engine).items() if value != _default_engine(key)
    }
    return DigitSumConfig(**values)


def _default_engine(key: str) -> Any:
    from ..training import EngineSettings

    return getattr(EngineSettings(), key)


def _main(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"deepsets digit-sum: error: {error}", file=sys.stderr)
        return 2
    metrics = run_digit_sum(config)
    if not all(v["is_global_zero"] for v in metrics["variants"].values()):
        return 0
    for variant, result in metrics["variants"].items():
        top = str(config.max_test_size)
        print(
            f"{variant}: accuracy at size 1 {result['accuracy']['1']:.1%}, "
            f"at size {top} {result['accuracy'][top]:.1%}, "
            f"lowest {result['min_accuracy']:.1%} (size {result['min_accuracy_size']}); "
            f"trained in {result['train_seconds']:.0f} s"
        )
    print(f"report: {Path(config.out) / 'report.md'}")
    return 0


if __name__ == "__main__":  # pragma: no cover - python -m deepsets.tasks.digit_sum
    _root = argparse.ArgumentParser(prog="deepsets")
    _sub = _root.add_subparsers(dest="command", required=True)
    add_subparser(_sub)
    _args = _root.parse_args(["digit-sum", *sys.argv[1:]])
    sys.exit(_args.func(_args))
