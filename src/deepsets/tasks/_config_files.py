"""Reading the settings files of the command-line tasks (JSON, or TOML by suffix)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["read_config_file"]


def read_config_file(path: str | Path, allowed: Iterable[str]) -> dict[str, Any]:
    """The entries of a JSON file, or a TOML file when the name ends in ``.toml``.

    Raises :class:`ValueError` for a file that is not a table/object, and for entries not
    in ``allowed``, naming them and the allowed ones.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError as error:
                raise ImportError("TOML config files need Python >= 3.11 or tomli") from error
        data: Any = tomllib.loads(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a table/object; got {data!r}")
    known = set(allowed)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"config file {str(path)!r} has unknown entries {unknown}; allowed: {sorted(known)}"
        )
    return data
