r"""Figures 1–7 of the power-spectrum experiment (matplotlib, PNG and SVG); 1–5 numbered
as in the blog post "Permutation-equivariant neural networks for power spectrum
estimation", 6–7 the study's own.

1. sample functions of eq. 4 for :math:`k_{\max} = 4, 32, 256`;
2. test MSE over the depth × width grid (mean ± std over seeds);
3. MSE per frequency ``k = 1, 2, 4`` over the grid;
4. MSE against the test set size ``N`` for models trained at one ``N``, with the
   baselines;
5. noise robustness: predicted against true log power per ``k`` at several test
   :math:`k_{\max}`;
6. MSE against ``N`` at :math:`k_{\max} = 64`, :math:`K_{fin} = 8`: the prior,
   validated least squares, the Bayes floor and the network (log axis);
7. the four regimes: every estimator's test MSE as grouped bars on a log axis, the
   spread over random seeds as error bars.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .._common import save_figure
from .baselines import EULER_GAMMA
from .config import PowerSpectrumConfig
from .data import sample_functions
from .regime_report import LABELS

__all__ = ["draw_figures"]

_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def draw_figures(
    metrics: dict[str, Any], config: PowerSpectrumConfig, directory: str | Path
) -> dict[str, str]:
    """Draw every figure the metrics allow into ``directory``.

    Returns:
        ``{"fig1": "figures/fig1-sample-functions.png", ...}``: PNG paths relative to the
        run directory (an SVG with the same stem lies beside each).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}
    painters = [
        ("fig1", "fig1-sample-functions", _fig1),
        ("fig2", "fig2-depth-width", _fig2),
        ("fig3", "fig3-per-frequency", _fig3),
        ("fig4", "fig4-set-size", _fig4),
        ("fig5", "fig5-noise", _fig5),
        ("fig6", "fig6-floor-vs-n", _fig6),
        ("fig7", "fig7-regimes", _fig7),
    ]
    for key, stem, paint in painters:
        figure = paint(plt, metrics, config)
        if figure is None:
            continue
        drawn[key] = save_figure(plt, figure, directory, stem)
    return drawn


def _fig1(plt: Any, metrics: dict[str, Any], config: PowerSpectrumConfig) -> Any:
    figure, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
    for ax, k_max in zip(axes, (4, 32, 256), strict=True):
        x, y = sample_functions(3, k_max, grid=600, seed=config.test_seed)
        for row, color in zip(y, _COLORS, strict=False):
            ax.plot(x.numpy(), row.numpy(), color=color, lw=1)
        ax.set_title(f"$k_{{max}}$ = {k_max}")
        ax.set_xlabel("x")
        ax.set_xlim(0, 2 * 3.14159265)
    axes[0].set_ylabel("f(x)")
    figure.suptitle("Fig. 1: random periodic functions (eq. 4)")
    return figure


def _grid_table(metrics: dict[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    table: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for cell in metrics["grid"]:
        table.setdefault((cell["depth"], cell["width"]), []).append(cell)
    return table


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, var**0.5


def _grid_lines(
    ax: Any, metrics: dict[str, Any], config: PowerSpectrumConfig, k: int | None
) -> None:
    table = _grid_table(metrics)
    for depth, color in zip(config.grid_depths, _COLORS, strict=False):
        widths, means, stds = [], [], []
        for width in config.grid_widths:
            cells = table.get((depth, width), [])
            if not cells:
                continue
            values = [c["test_mse"] if k is None else c["per_k_mse"][k - 1] for c in cells]
            mean, std = _mean_std(values)
            widths.append(width)
            means.append(mean)
            stds.append(std)
        ax.errorbar(
            widths, means, yerr=stds, marker="o", capsize=3, color=color, label=f"D={depth}"
        )
    prior = metrics["prior_mse"] if k is None else metrics["prior_per_k_mse"][k - 1]
    lstsq = metrics["lstsq_mse"] if k is None else metrics["lstsq_per_k_mse"][k - 1]
    ax.axhline(prior, color="0.4", ls="--", lw=1, label="prior")
    ax.axhline(lstsq, color="0.4", ls=":", lw=1, label="least squares")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("width $K_{hide}$")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _fig2(plt: Any, metrics: dict[str, Any], config: PowerSpectrumConfig) -> Any:
    if not metrics.get("grid"):
        return None
    figure, ax = plt.subplots(figsize=(5.5, 3.8))
    _grid_lines(ax, metrics, config, None)
    ax.set_ylabel("test MSE of log $p_k$ (mean over k)")
    seeds = len(config.grid_seeds)
    ax.set_title(f"Fig. 2: depth and width ({seeds} seed{'s' * (seeds > 1)} per cell)")
    ax.legend(fontsize=8)
    return figure


def _fig3(plt: Any, metrics: dict[str, Any], config: PowerSpectrumConfig) -> Any:
    if not metrics.get("grid"):
        return None
    ks = [k for k in (1, 2, 4) if k <= config.k_fin]
    figure, axes = plt.subplots(1, len(ks), figsize=(4 * len(ks), 3.4), sharey=True)
    axes = axes if len(ks) > 1 else [axes]
    for ax, k in zip(axes, ks, strict=True):
        _grid_lines(ax, metrics, config, k)
        ax.set_title(f"k = {k}")
    axes[0].set_ylabel("test MSE of log $p_k$")
    axes[-1].legend(fontsize=8)
    figure.suptitle("Fig. 3: MSE per frequency")
    return figure


def _fig4(plt: Any, metrics: dict[str, Any], config: PowerSpectrumConfig) -> Any:
    figure, ax = plt.subplots(figsize=(6, 3.8))
    for encoding, color in zip(metrics["encodings"], _COLORS, strict=False):
        runs = [r for r in metrics["runs"] if r["encoding"] == encoding]
        for run in runs:
            sizes = [int(n) for n in run["size_sweep"]]
            ax.plot(sizes, list(run["size_sweep"].values()), color=color, lw=0.8, alpha=0.5)
        mean = metrics["encodings"][encoding]["size_sweep"]
        ax.plot(
            [int(n) for n in mean],
            list(mean.values()),
            color=color,
            lw=2,
            marker="o",
            label=f"{encoding} ({len(runs)} seed{'s' * (len(runs) > 1)})",
        )
    for name, style in (("prior", "--"), ("lstsq", ":")):
        sweep = metrics["baselines"][name]["size_sweep"]
        values = list(sweep.values())
        label = "prior" if name == "prior" else f"least squares (K={config.lstsq_k})"
        ax.plot([int(n) for n in sweep], values, color="0.4", ls=style, label=label)
    ax.axvline(config.set_size, color="0.6", lw=1)
    ax.text(config.set_size, ax.get_ylim()[1], " trained N", va="top", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("test set size N")
    ax.set_ylabel("test MSE of log $p_k$")
    ax.set_title("Fig. 4: one model, any set size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure


def _fig5(plt: Any, metrics: dict[str, Any], config: PowerSpectrumConfig) -> Any:
    noise = metrics.get("noise")
    if not noise:
        return None
    tests = noise["tests"]
    figure, axes = plt.subplots(1, len(tests), figsize=(4 * len(tests), 3.4), sharey=True)
    axes = axes if len(tests) > 1 else [axes]
    ks = list(range(1, config.noise_k_fin + 1))
    for ax, (k_max, test) in zip(axes, tests.items(), strict=True):
        for true, predicted, color in zip(
            test["example_true_log_power"],
            test["example_predicted_log_power"],
            _COLORS,
            strict=False,
        ):
            ax.plot(ks, true, "o", color=color, ms=4)
            ax.plot(ks, predicted, "-", color=color, lw=1.2)
        prior = [-2 * math.log(k) - EULER_GAMMA for k in ks]
        ax.plot(ks, prior, "k--", lw=1, label="prior mean")
        ax.set_title(
            f"test $k_{{max}}$ = {k_max}: MSE {test['mse']:.2f} (prior {test['prior_mse']:.2f})"
        )
        ax.set_xlabel("k")
    axes[0].set_ylabel("log $p_k$: true (dots), predicted (lines)")
    axes[0].legend(fontsize=8)
    figure.suptitle(
        f"Fig. 5: trained at $k_{{max}}$ = {config.noise_k_max}, $K_{{fin}}$ = {config.noise_k_fin}"
    )
    return figure


def _fig6(plt: Any, metrics: dict[str, Any], config: PowerSpectrumConfig) -> Any:
    sweep = metrics.get("floor_sweep")
    if not sweep:
        return None
    figure, ax = plt.subplots(figsize=(6, 3.8))
    sizes = sweep["sizes"]
    lines = (
        ("prior", "prior", "0.4", "--"),
        ("lstsq", "least squares (validated K)", "tab:orange", "-"),
        ("network", f"network ({sweep['network_name']})", "tab:blue", "-"),
        ("bayes", "Bayes floor", "black", ":"),
    )
    for key, label, color, style in lines:
        # a log axis: exact estimates (rounding error, ~1e-30) are drawn at 1e-6
        points = [
            (n, max(v, 1e-6)) for n, v in zip(sizes, sweep[key], strict=True) if v is not None
        ]
        ax.plot(*zip(*points, strict=True), color=color, ls=style, marker="o", ms=3, label=label)
    ax.axvline(sweep["trained_set_size"], color="0.6", lw=1)
    ax.text(
        sweep["trained_set_size"], 0.97, " trained N", va="top", fontsize=8,
        transform=ax.get_xaxis_transform(),
    )  # fmt: skip
    ax.axvline(2 * sweep["k_max"] + 1, color="0.8", lw=1, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("set size N")
    ax.set_ylabel("test MSE of log $p_k$ (floor 1e-6)")
    ax.set_title(f"Fig. 6: k_max = {sweep['k_max']}, K_fin = {sweep['k_fin']}, noiseless")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return figure


def _fig7(plt: Any, metrics: dict[str, Any], config: PowerSpectrumConfig) -> Any:
    regimes = metrics.get("regimes")
    if not regimes:
        return None
    names = list(regimes)
    keys = list(dict.fromkeys(k for r in regimes.values() for k in r["estimators"]))
    figure, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        xs, heights, errors = [], [], []
        for j, name in enumerate(names):
            entry = regimes[name]["estimators"].get(key)
            if entry is None:
                continue
            xs.append(j + (i - (len(keys) - 1) / 2) * width)
            heights.append(max(entry["mse"], 1e-6))  # a log axis: exact estimates at 1e-6
            errors.append(entry.get("mse_sd", 0.0))
        color = _COLORS[i % len(_COLORS)] if key != "bayes" else "black"
        ax.bar(xs, heights, width, yerr=errors, color=color, label=LABELS.get(key, key))
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("test MSE of log $p_k$ (floor 1e-6)")
    ax.set_title("Fig. 7: the four regimes (error bars: sd over random seeds)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    ax.grid(alpha=0.3, axis="y")
    return figure
