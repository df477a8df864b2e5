"""The experiment registry: every experiment loads, imports point down, nothing loads early."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from deepsets.experiments import EXPERIMENTS, get_experiment
from deepsets.experiments._config import ExperimentConfig

SRC = Path(__file__).resolve().parents[2] / "src" / "deepsets"
MODULES = {"config", "data", "model", "baselines", "evaluate", "run", "report", "figures"}


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda e: e.name)
def test_every_experiment_has_the_same_shape(experiment: object) -> None:
    pytest.importorskip("lightning")
    entry = get_experiment(experiment.name)  # type: ignore[attr-defined]
    config_class = entry.config_class()
    assert issubclass(config_class, ExperimentConfig)
    assert {"out", "resume", "threads", "engine"} <= {f.name for f in fields(config_class)}
    assert callable(entry.run_function()) and callable(entry.summary_function())
    presets = entry.preset_table()
    for values in (presets or {"default": {}}).values():
        config_class(**values)  # every preset is a valid configuration
    folder = SRC / "experiments" / config_class.__module__.split(".")[-2]
    names = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    assert {"config", "data", "model", "run", "report", "figures"} <= names
    # Module names are shared across experiments only for the rooms; any other module
    # has a name no other experiment uses.
    for other in (SRC / "experiments").iterdir():
        if other.is_dir() and other != folder and (other / "__init__.py").exists():
            shared = {p.stem for p in other.glob("*.py")} & (names - MODULES)
            assert not shared, (folder.name, other.name, shared)


def _imports(path: Path) -> list[str]:
    """The deepsets modules ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append(name)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name.startswith("deepsets")]


def test_imports_only_point_down() -> None:
    """core ← training ← experiments ← cli: no floor imports from one above it."""
    floors = {"training": 1, "experiments": 2, "cli": 3, "__main__": 4, "study": 4, "tasks": 4}
    for path in SRC.rglob("*.py"):
        own = floors.get(path.relative_to(SRC).parts[0].removesuffix(".py"), 0)
        for name in _imports(path):
            parts = name.split(".")
            target = floors.get(parts[1], 0) if len(parts) > 1 else 0
            assert target <= own, f"{path.relative_to(SRC)} imports {name}"
    # inside an experiment, parts never import the driver
    for path in (SRC / "experiments").glob("*/*.py"):
        if path.stem != "run":
            assert not any(name.endswith(".run") for name in _imports(path)), path


def test_import_deepsets_and_help_load_no_experiment_and_no_lightning() -> None:
    code = (
        "import sys, deepsets, deepsets.cli\n"
        "parser = deepsets.cli.build_parser()\n"
        "heavy = ('lightning', 'deepsets.training.engine')\n"
        "loaded = [m for m in sys.modules if m.startswith(heavy)]\n"
        "runs = [m for m in sys.modules if m.endswith('.run') and 'experiments' in m]\n"
        "print(loaded, runs)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip() == "[] []"
    bare = "import sys, deepsets\nprint([m for m in sys.modules if 'experiments' in m])\n"
    done = subprocess.run(
        [sys.executable, "-c", bare], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip() == "[]"


def test_unknown_experiment_names_the_choices() -> None:
    with pytest.raises(ValueError, match="experiment must be one of 'power-spectrum'"):
        get_experiment("sudoku")
