"""Settings of the power-spectrum experiment: presets, validation, config files."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")

from deepsets.experiments.power_spectrum.config import (
    PRESETS,
    PowerSpectrumConfig,
    add_config_arguments,
    load_config_file,
)


def test_quick_preset_is_the_default_and_paper_is_the_blog_posts_scale() -> None:
    quick = PowerSpectrumConfig(**PRESETS["quick"])
    assert quick == PowerSpectrumConfig()
    paper = PowerSpectrumConfig(preset="paper", **PRESETS["paper"])
    assert (paper.set_size, paper.batch_size, paper.test_sets) == (512, 256, 1024)
    assert (paper.k_max, paper.k_fin, paper.lr, paper.lr_schedule) == (4, 4, 1e-3, "constant")
    assert len(paper.grid_depths) * len(paper.grid_widths) >= 16
    assert len(paper.grid_seeds) >= 3 and len(paper.seeds) >= 3
    assert paper.noise_width == 2048 and paper.noise_k_max == 64 and paper.noise_k_fin == 8
    assert paper.workers == 1


def test_every_setting_is_a_flag() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = {action.dest for action in parser._actions}
    tables = {"engine", "generic", "structured"}  # config-file tables, no flags
    settings = {f.name for f in fields(PowerSpectrumConfig)} - tables
    assert settings <= flags
    assert not tables & flags


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"preset": "huge"}, ValueError, "preset"),
        ({"k_fin": 5}, ValueError, "k_fin must be <= k_max=4; got 5"),
        ({"width": 0}, ValueError, "width must be a positive int; got 0"),
        ({"depth": 2.5}, TypeError, "depth must be an int"),
        ({"seeds": []}, ValueError, "seeds must hold at least one value"),
        (
            {"encodings": ["raw", "polar"]},
            ValueError,
            "encodings must be one of 'raw', 'circle'; got 'polar'",
        ),
        ({"grid_encoding": "polar"}, ValueError, "grid_encoding must be one of"),
        ({"lr": -1.0}, ValueError, "lr must be > 0"),
        ({"lr_schedule": "step"}, ValueError, "lr_schedule must be one of"),
        ({"lstsq_k": 3}, ValueError, "lstsq_k must be >= k_fin=4"),
        ({"noise_k_fin": 70}, ValueError, "noise_k_fin must be <= noise_k_max=64"),
        ({"engine": {"devices": 2, "accelerator": "cpu"}}, ValueError, "workers must be 1"),
        ({"engine": {"colour": "red"}}, ValueError, "engine has unknown settings"),
        ({"resume": "yes"}, TypeError, "resume must be a bool"),
        ({"noise": -0.1}, ValueError, "noise must be a number >= 0; got -0.1"),
        ({"regimes": ["blog", "loud"]}, ValueError, "regimes must be one of"),
        ({"designs": ["deep"]}, ValueError, "designs must be one of 'generic', 'structured'"),
        ({"ridges": [0.1, 0.0]}, ValueError, r"ridges must all be > 0; got \[0.1, 0.0\]"),
        ({"valid_sets": 0}, ValueError, "valid_sets must be a positive int"),
        ({"generic": {"stpes": 3}}, ValueError, r"unknown generic settings \['stpes'\]"),
        (
            {"structured": {"aliasing": {"lr": -1}}},
            ValueError,
            "lr must be > 0",
        ),
        ({"structured": {"noisy": 5}}, TypeError, r"structured\['noisy'\] must be a dict"),
        ({"generic": {"hidden": "wide"}}, TypeError, "hidden must be an int"),
    ],
)
def test_bad_settings_name_the_setting(
    change: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        PowerSpectrumConfig(**change)


def test_single_values_become_lists_and_duplicates_go() -> None:
    config = PowerSpectrumConfig(seeds=3, encodings=["raw", "raw", "circle"])  # type: ignore[arg-type]
    assert config.seeds == [3] and config.encodings == ["raw", "circle"]


def test_config_files(tmp_path: Path) -> None:
    as_json = tmp_path / "a.json"
    as_json.write_text(json.dumps({"width": 7, "seeds": [1]}))
    assert load_config_file(as_json) == {"width": 7, "seeds": [1]}
    as_toml = tmp_path / "a.toml"
    as_toml.write_text("width = 7\nseeds = [1]\n[engine]\nlogger = 'none'\n")
    assert load_config_file(as_toml) == {"width": 7, "seeds": [1], "engine": {"logger": "none"}}
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"widht": 7}))
    with pytest.raises(ValueError, match=r"unknown entries \['widht'\]"):
        load_config_file(bad)
    listed = tmp_path / "c.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a table/object"):
        load_config_file(listed)


def test_design_settings_resolve_per_regime() -> None:
    from deepsets.experiments.power_spectrum.config import design_settings

    table = {"lr": 1e-3, "steps": 10, "aliasing": {"steps": 20, "num_frequencies": 64}}
    assert design_settings(table, "aliasing", name="g").steps == 20
    blog = design_settings(table, "blog", name="g")
    assert (blog.steps, blog.lr, blog.num_frequencies) == (10, 1e-3, 8)


def test_full_preset_runs_every_regime_with_three_seeds() -> None:
    full = PowerSpectrumConfig(preset="full", **PRESETS["full"])
    assert full.regimes == ["blog", "noisy", "underdetermined", "aliasing"]
    assert full.designs == ["generic", "structured"] and full.regime_seeds == [0, 1, 2]
    assert (full.valid_sets, full.regime_test_sets) == (1024, 1024)
    quick = PowerSpectrumConfig()
    assert quick.noise == 0.0 and quick.regime_seeds == [0]
    for regime in full.regimes:  # the full budgets are at least the quick ones
        from deepsets.experiments.power_spectrum.config import design_settings

        for design in full.designs:
            long = design_settings(getattr(full, design), regime, name=design)
            short = design_settings(getattr(quick, design), regime, name=design)
            assert long.steps >= short.steps
