"""Every ```python block in the docs and the README runs, in order, one namespace per page.

Blocks of a page share state, as a reader pasting them one after another would. A page
whose blocks fail shows the failing block's first line and number.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if p.exists() and python_blocks(p)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_page_code_runs(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib").use("Agg")
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(python_blocks(page), start=1):
        code = compile(block, f"{page.relative_to(ROOT)} [block {number}]", "exec")
        exec(code, namespace)


def test_docs_have_runnable_examples() -> None:
    """The collector is alive: the tutorials hold Python blocks it can find."""
    assert python_blocks(ROOT / "docs" / "tutorials" / "getting-started.md")


def test_sources_and_pages_hold_no_control_characters() -> None:
    r"""A LaTeX docstring that is not a raw string turns ``\frac`` into a form feed and
    ``\theta`` into a tab: the rendered formula silently loses letters. Catch the bytes."""
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
    files = [*PAGES, *sorted((ROOT / "src").rglob("*.py"))]
    files += [*sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "benchmarks").rglob("*.py"))]
    # split at "\n" only: str.splitlines() also splits at a form feed and would hide it
    bad = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        if path.exists()
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1)
        if control.search(line)
    ]
    assert not bad, f"control characters in {bad}"
