"""The regime sections of ``report.md``: one table per regime, one row per estimator, with
the Bayes floor, the regret fraction, the spread over random seeds, and each regime's
winner stated plainly (:func:`regime_summary`, :func:`regime_sections`)."""

from __future__ import annotations

from typing import Any

from .config import PowerSpectrumConfig

__all__ = ["LABELS", "estimator_label", "regime_sections", "regime_summary"]

#: Row names of the estimators.
LABELS = {
    "prior": "prior E[log p_k]",
    "lstsq": "least squares",
    "ridge": "ridge",
    "bayes": "Bayes floor (posterior mean of log p_k)",
    "generic": "generic network (Fourier features + MLP ρ)",
    "structured": "structured network (pooled second moments + learned solve)",
}

_BASELINES = ("prior", "lstsq", "ridge")


def estimator_label(name: str, entry: dict[str, Any]) -> str:
    """The row name of an estimator, with its validated setting (``K``, λ) if any."""
    label = LABELS.get(name, name)
    if name == "lstsq":
        return f"{label} (K = {entry['k_fit']}, chosen on validation)"
    if name == "ridge":
        return f"{label} (K = {entry['k_fit']}, λ = {entry['ridge']:g}, chosen on validation)"
    return label


def _g(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"


def _regret(value: float) -> str:
    return f"{0.0 if abs(value) < 5e-4 else value:.3f}"  # no "-0.000" at the floor


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _title(name: str, regime: dict[str, Any]) -> str:
    return (
        f"{name} (k_max {regime['k_max']}, K_fin {regime['k_fin']}, "
        f"N {regime['set_size']}, σ {regime['noise']:g})"
    )


def _mse_cell(name: str, entry: dict[str, Any]) -> str:
    seeds = entry.get("seeds")
    if seeds is None:  # a baseline: ± its standard error over the test functions
        return f"{_g(entry['mse'])} ± {_g(entry['se'])}"
    if len(seeds) == 1:
        return f"{_g(entry['mse'])} (1 seed)"
    return f"{_g(entry['mse'])} ± {_g(entry['mse_sd'])} (sd, {len(seeds)} seeds)"


def _setting(name: str, entry: dict[str, Any]) -> str:
    if "steps" in entry:
        return (
            f"{entry['steps']} steps × {entry['batch_size']}, J = {entry['num_frequencies']}, "
            f"{entry['parameters']:,} parameters"
        )
    return ""


def regime_summary(metrics: dict[str, Any]) -> list[str]:
    """One line per regime: the winner and the floor."""
    lines = []
    for name, regime in (metrics.get("regimes") or {}).items():
        est = regime["estimators"]
        winner = regime["winner"]
        lines.append(
            f"- **{name}**: the winner is the {estimator_label(winner, est[winner])} "
            f"with MSE {_g(est[winner]['mse'])} (regret {_regret(est[winner]['regret'])}); "
            f"the Bayes floor is {_g(est['bayes']['mse'])}, the prior "
            f"{_g(est['prior']['mse'])}."
        )
    return lines


def _beaten(name: str, regime: dict[str, Any]) -> str | None:
    """A sentence naming the baselines that beat network ``name``, if any."""
    est = regime["estimators"]
    better = [b for b in _BASELINES if b in est and est[b]["mse"] < est[name]["mse"]]
    if not better:
        return None
    names = ", ".join(f"{estimator_label(b, est[b])} ({_g(est[b]['mse'])})" for b in better)
    tie = " (all of them exact to 1e-4)" if est[name]["mse"] < 1e-4 else ""
    return f"- **A baseline beats the {LABELS[name]}** ({_g(est[name]['mse'])}): {names}{tie}."


def regime_sections(metrics: dict[str, Any], config: PowerSpectrumConfig) -> list[str]:
    """The headline section: the floor, the four regimes, figures 6 and 7."""
    regimes = metrics.get("regimes") or {}
    if not regimes:
        return []
    lines = ["## The Bayes floor and the four regimes", ""]
    if config.preset != "full":
        lines += [
            f"**These are the `{config.preset}` preset's numbers** (budgets and test sets "
            "below the `full` preset's; see docs/study/power-spectrum.md for the `full` "
            "preset's).",
            "",
        ]
    lines += [
        "Every estimator is scored on the same fixed test functions of its regime: the "
        "MSE of log p_k, mean over k ≤ K_fin. The Bayes floor is the posterior mean "
        "E[log p_k | data] under the functions' prior (no estimator can do better in "
        "expectation). Least squares' K and ridge's λ are chosen on separate validation "
        "functions, never on the test set. Regret = (MSE − Bayes) / (prior − Bayes): 0 is "
        "the floor, 1 the prior. Baselines: ± the standard error over test functions; "
        "networks: ± the standard deviation over random seeds. − Bayes: the paired "
        "difference to the floor on the same functions (networks: mean over seeds). "
        "CPU-s: process time of training one model (baselines: validation and test).",
        "",
    ]
    for name, regime in regimes.items():
        est = regime["estimators"]
        k_fin = regime["k_fin"]
        winner = regime["winner"]
        lines += [
            f"### {_title(name, regime)}",
            "",
            f"Winner: **{estimator_label(winner, est[winner])}**, MSE {_g(est[winner]['mse'])}"
            f" (floor {_g(est['bayes']['mse'])}). {regime['test_sets']} test functions, "
            f"{regime['valid_sets']} validation functions.",
            "",
        ]
        header = ["estimator", "test MSE", "− Bayes", "regret", "CPU-s", "setting"]
        header += [f"k={k}" for k in range(1, k_fin + 1)]
        lines += [_row(header), _row(["---"] * len(header))]
        for key, entry in est.items():
            minus = entry.get("minus_bayes")
            minus_cell = "" if minus is None else _g(minus)
            if minus is not None and "minus_bayes_se" in entry:
                minus_cell += f" ± {_g(entry['minus_bayes_se'])}"
            lines.append(
                _row(
                    [
                        estimator_label(key, entry),
                        _mse_cell(key, entry),
                        minus_cell,
                        _regret(entry["regret"]),
                        f"{entry['cpu_seconds']:.1f}",
                        _setting(key, entry),
                        *(f"{v:.3f}" for v in entry["per_k_mse"]),
                    ]
                )
            )
        lines.append("")
        notes = [_beaten(design, regime) for design in config.designs if design in est]
        lines += [n for n in notes if n] or ["- No baseline beats a network here."]
        lines.append("")
    sweep = metrics.get("floor_sweep")
    if sweep:
        lines += [
            "### MSE against N (figure 6)",
            "",
            f"k_max {sweep['k_max']}, K_fin {sweep['k_fin']}, σ 0, {sweep['sets']} functions "
            f"per N. The network is `{sweep['network_name']}`, trained at N = "
            f"{sweep['trained_set_size']} only and evaluated at every N.",
            "",
            _row(["N", "prior", "least squares (K)", "Bayes", "network"]),
            _row(["---"] * 5),
        ]
        for i, n in enumerate(sweep["sizes"]):
            k = sweep["lstsq_k"][i]
            lsq = "no full-rank fit" if k is None else f"{_g(sweep['lstsq'][i])} (K = {k})"
            lines.append(
                _row(
                    [n, _g(sweep["prior"][i]), lsq, _g(sweep["bayes"][i]), _g(sweep["network"][i])]
                )
            )
        lines.append("")
    return lines
