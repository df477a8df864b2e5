"""Settings of the digit-sum experiment: checks, config files, flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("lightning")

from deepsets.cli import add_experiment_parser
from deepsets.experiments import get_experiment
from deepsets.experiments.digit_sum.config import DigitSumConfig, config_from_args


def test_config_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"variants must be one of 'integer', 'image'; got 'x'"):
        DigitSumConfig(variants=["x"])
    with pytest.raises(ValueError, match="steps must be a positive int or None; got 0"):
        DigitSumConfig(steps=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int; got -1"):
        DigitSumConfig(batch_size=-1)
    with pytest.raises(ValueError, match="phi_hidden_dims must be a positive int; got 0"):
        DigitSumConfig(phi_hidden_dims=[0])
    with pytest.raises(ValueError, match=r"engine has unknown settings \['gpus'\]"):
        DigitSumConfig(engine={"gpus": 2})
    with pytest.raises(ValueError, match="accelerator must be one of"):
        DigitSumConfig(engine={"accelerator": "abacus"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"step": 3}))
    with pytest.raises(ValueError, match=r"unknown entries \['step'\]"):
        DigitSumConfig.from_file(bad)


def _parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="deepsets")
    sub = root.add_subparsers(dest="command", required=True)
    parser = add_experiment_parser(sub, get_experiment("digit-sum"))
    assert parser.prog.endswith("digit-sum")
    return root


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"steps": 11, "seed": 5, "engine": {"logger": "none"}}))
    args = _parser().parse_args(
        [
            *("digit-sum", "--config", str(file), "--seed", "6", "--variant", "image"),
            *("--phi-hidden-dims", "4", "4", "--devices", "1", "--accelerator", "cpu"),
        ]
    )
    assert callable(args.func)
    config = config_from_args(args)
    assert config.steps == 11  # from the file
    assert config.seed == 6  # the flag wins
    assert config.variants == ["image"]
    assert config.phi_hidden_dims == [4, 4]
    assert config.engine == {"logger": "none", "devices": 1, "accelerator": "cpu"}
    assert config_from_args(_parser().parse_args(["digit-sum"])) == DigitSumConfig()
