"""The old homes of the experiments still import, re-export the same objects, and warn."""

from __future__ import annotations

import importlib
import sys

import pytest

pytest.importorskip("lightning")

OLD_TO_NEW = {
    "deepsets.study": ("deepsets.experiments.power_spectrum.run", "run_power_spectrum"),
    "deepsets.study.config": ("deepsets.experiments.power_spectrum.config", "PowerSpectrumConfig"),
    "deepsets.study.power_spectrum": ("deepsets.experiments.power_spectrum.model", "build_model"),
    "deepsets.study.report": ("deepsets.experiments.power_spectrum.report", "write_report"),
    "deepsets.study.figures": ("deepsets.experiments.power_spectrum.figures", "draw_figures"),
    "deepsets.tasks.power_spectrum": ("deepsets.experiments.power_spectrum.data", "encode"),
    "deepsets.tasks.digit_sum": ("deepsets.experiments.digit_sum.run", "run_digit_sum"),
    "deepsets.tasks._seeding": ("deepsets.experiments._common", "generator_for"),
    "deepsets.tasks._config_files": ("deepsets.experiments._config", "read_config_file"),
}


@pytest.mark.parametrize("old", sorted(OLD_TO_NEW))
def test_old_module_warns_and_re_exports(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith(("deepsets.study", "deepsets.tasks"))]:
        monkeypatch.delitem(sys.modules, name)
    # Importing a submodule also imports (and hears from) its deprecated parent package.
    with pytest.warns(DeprecationWarning) as heard:
        module = importlib.import_module(old)
    assert any(f"{old} is deprecated" in str(w.message) for w in heard), [
        str(w.message) for w in heard
    ]
    new, name = OLD_TO_NEW[old]
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    for public in module.__all__:
        assert hasattr(module, public)


def test_old_digit_sum_subparser_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    monkeypatch.delitem(sys.modules, "deepsets.tasks.digit_sum", raising=False)
    with pytest.warns(DeprecationWarning):
        from deepsets.tasks import digit_sum
    root = argparse.ArgumentParser(prog="deepsets")
    digit_sum.add_subparser(root.add_subparsers(dest="command"))
    args = root.parse_args(["digit-sum", "--variant", "integer", "--steps", "3"])
    config = digit_sum.config_from_args(args)
    assert (config.variants, config.steps) == (["integer"], 3)
