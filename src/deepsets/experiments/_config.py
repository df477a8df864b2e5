"""The settings scaffold of every experiment: preset < config file < flags.

An experiment's configuration is a dataclass that inherits :class:`ExperimentConfig` and
declares each field with :func:`deepsets._settings.setting` (type, help, limits, choices).
From that one declaration come

* the checks: :meth:`ExperimentConfig.__post_init__` validates every field with the
  shared validator (:class:`TypeError` for a wrong type, :class:`ValueError` for a wrong
  value, both naming the setting), then the class's own cross-field rules
  (:meth:`ExperimentConfig.check`), then the ``engine`` table;
* the command line: :func:`add_config_arguments` adds ``--preset`` (when the experiment
  has presets), ``--config``, one flag per field and the engine's flags;
* the resolution: :func:`config_from_args` starts from the preset, applies the config
  file (JSON, or TOML by the ``.toml`` suffix), then the flags.

The resolved configuration is written to the run directory as ``config.json``, which can
be passed back with ``--config`` to repeat the run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

from .._settings import add_flags, check_fields, flag_values

__all__ = [
    "ExperimentConfig",
    "Presets",
    "add_config_arguments",
    "config_from_args",
    "read_config_file",
]

C = TypeVar("C", bound="ExperimentConfig")

#: Named starting points of a configuration: ``{name: {field: value}}``; fields not named
#: keep the dataclass defaults. The first preset is the default.
Presets = Mapping[str, Mapping[str, Any]]


class ExperimentConfig:
    """Base of every experiment's configuration dataclass (it adds no fields).

    A subclass declares its fields with :func:`~deepsets._settings.setting`, holds the
    engine's settings in an ``engine: dict`` field, and may override :meth:`check` for
    rules between fields.
    """

    engine: dict[str, Any]

    def __post_init__(self) -> None:
        check_fields(self)
        self.check()
        self.engine_settings()  # fail early on bad engine settings

    def check(self) -> None:
        """Rules between fields (each field alone is already checked); raise
        :class:`ValueError` naming the setting."""

    def engine_settings(self) -> Any:
        """The :class:`deepsets.training.EngineSettings` of the ``engine`` table."""
        from ..training.settings import EngineSettings

        return EngineSettings.from_dict(self.engine)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-ready values."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def coerce(cls: type[C], config: object) -> C:
        """``config`` itself, or the configuration of a dict of its fields.

        Raises:
            TypeError: for anything else, naming the class.
        """
        if isinstance(config, dict):
            config = cls(**config)
        if not isinstance(config, cls):
            raise TypeError(f"config must be {cls.__name__} or dict; got {type(config).__name__}")
        return config

    @classmethod
    def from_file(cls: type[C], path: str | Path) -> C:
        """Read a JSON (or, by suffix, TOML) config file holding (some of) the fields."""
        return cls(**read_config_file(path, [f.name for f in fields(cls)]))  # type: ignore[arg-type]


def read_config_file(path: str | Path, allowed: Any) -> dict[str, Any]:
    """The entries of a JSON file, or a TOML file when the name ends in ``.toml``.

    Raises :class:`ValueError` for a file that is not a table/object, and for entries not
    in ``allowed``, naming them and the allowed ones.
    """
    import json

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


def _preset_help(config_class: type) -> str:
    item = next(f for f in fields(config_class) if f.name == "preset")
    return str(item.metadata["setting"].help)


def add_config_arguments(
    parser: argparse.ArgumentParser, config_class: type, presets: Presets | None = None
) -> None:
    """Add ``--preset`` (with ``presets``), ``--config``, one flag per setting of
    ``config_class`` (group "settings") and the engine's flags (group "engine").

    Every flag defaults to ``None`` ("not given"); :func:`config_from_args` resolves them.
    """
    from ..training.settings import add_engine_arguments

    if presets:
        parser.add_argument(
            "--preset", choices=list(presets), default=None, help=_preset_help(config_class)
        )
    parser.add_argument("--config", default=None, help="JSON or TOML file of settings")
    add_flags(parser.add_argument_group("settings"), config_class, skip=("preset",))
    add_engine_arguments(parser)


def config_from_args(
    args: argparse.Namespace, config_class: type[C], presets: Presets | None = None
) -> C:
    """Resolve preset < ``--config`` file < flags into a ``config_class``.

    The preset is ``--preset``, else the file's ``preset`` entry, else the first preset.
    The engine table keeps only the settings that differ from the engine's defaults.
    """
    from ..training.settings import engine_overrides, engine_settings_from_args

    names = [f.name for f in fields(config_class)]  # type: ignore[arg-type]
    file_values = read_config_file(args.config, names) if args.config else {}
    values: dict[str, Any] = {}
    if presets:
        preset = getattr(args, "preset", None) or file_values.get("preset") or next(iter(presets))
        if preset not in presets:
            choices = ", ".join(map(repr, presets))
            raise ValueError(f"preset must be one of {choices}; got {preset!r}")
        values.update(presets[preset])
        values.update(file_values)
        values["preset"] = preset
    else:
        values.update(file_values)
    values.update(flag_values(args, config_class))
    base = config_class(**values)
    values["engine"] = engine_overrides(engine_settings_from_args(args, base.engine_settings()))
    return config_class(**values)
