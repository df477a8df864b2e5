"""The experiments' shared scaffold: seeding, threads, the run directory, the malloc restart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from deepsets.experiments import _common as common
from deepsets.experiments._common import (
    MALLOC_SETTINGS,
    RunDirectory,
    generator_for,
    mix_seed,
    torch_threads,
)


def test_seeds_are_pure_functions_of_their_parts() -> None:
    assert mix_seed(1, 2, 3) == mix_seed(1, 2, 3) != mix_seed(1, 2, 4)
    assert mix_seed(3, 2, 1) != mix_seed(1, 2, 3)
    assert 0 <= mix_seed(-5, 10**30) < 2**63
    a = torch.rand(4, generator=generator_for(7, 1))
    assert torch.equal(a, torch.rand(4, generator=generator_for(7, 1)))
    assert not torch.equal(a, torch.rand(4, generator=generator_for(7, 2)))


def test_torch_threads_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("a failing run")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_run_directory_writes_atomically(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "a" / "b")
    path = run.write_json("metrics.json", {"x": [1, 2]})
    assert json.loads(path.read_text()) == {"x": [1, 2]}
    run.write_text("report.md", "# hi\n")
    run.write_text("report.md", "# again\n")
    assert (run.path / "report.md").read_text() == "# again\n"
    assert sorted(p.name for p in run.path.iterdir()) == ["metrics.json", "report.md"]
    assert run.figures == run.path / "figures" and not run.figures.exists()


def test_restart_sets_malloc_variables_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(common.os, "execve", lambda *a: calls.append(a))
    monkeypatch.setattr(common.sys, "platform", "linux")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(common.sys, "argv", ["deepsets", "power-spectrum", "--preset", "quick"])
    for key in MALLOC_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("DEEPSETS_MALLOC_TUNING", raising=False)
    common.restart_with_malloc_settings()
    assert len(calls) == 1
    _executable, argv, env = calls[0]
    assert argv == [sys.executable, "-m", "deepsets", "power-spectrum", "--preset", "quick"]
    assert all(env[key] == value for key, value in MALLOC_SETTINGS.items())
    # Already set, or switched off: no restart.
    for key, value in MALLOC_SETTINGS.items():
        monkeypatch.setenv(key, value)
    common.restart_with_malloc_settings()
    for key in MALLOC_SETTINGS:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DEEPSETS_MALLOC_TUNING", "0")
    common.restart_with_malloc_settings()
    assert len(calls) == 1


_PACK_A_BATCH = """
import torch
{quiet}
torch.nested.nested_tensor_from_jagged(torch.ones(5, 2), torch.tensor([0, 2, 5]))
"""


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_torch_notices_hides_torchs_warning_about_its_own_code(quiet: bool) -> None:
    """torch 2.13 warns about its own ``is_fx_tracing`` call when a jagged tensor is built;
    the command line hides exactly that (checked in a fresh process: torch warns once)."""
    import subprocess

    hide = "from deepsets.experiments._common import quiet_torch_notices; quiet_torch_notices()"
    script = _PACK_A_BATCH.format(quiet=hide if quiet else "")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    if quiet:
        assert "is_fx_tracing" not in done.stderr
    elif "is_fx_tracing" not in done.stderr:
        pytest.skip("this torch does not log the notice: nothing to hide")
