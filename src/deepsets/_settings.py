"""Checked settings: one field validator and one flag builder for every settings dataclass.

A settings class is a dataclass whose fields are declared with :func:`setting`. The field's
type annotation says what it holds (``int``, ``float``, ``bool``, ``str``, ``list[...]``,
``... | None``, ``dict``); the field's metadata says the rest (a help text, a minimum, the
enum of allowed strings, how the command-line flag looks). :func:`check_fields` validates
and normalises every field of an instance, raising :class:`TypeError` for a wrong type and
:class:`ValueError` for a wrong value, both naming the setting; :func:`add_flags` turns the
fields into ``argparse`` flags and :func:`flag_values` reads them back.

Both the experiments' configurations (:mod:`deepsets.experiments`) and the training
engine's :class:`~deepsets.training.EngineSettings` use it. It lives here, beside
:mod:`deepsets._validation`, because :mod:`deepsets.training` must not import from the
experiments above it; it needs neither torch nor Lightning.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import Enum
from typing import Any, Union

from ._validation import resolve_option

__all__ = ["Setting", "add_flags", "check_fields", "check_known", "flag_values", "setting"]


@dataclass(frozen=True)
class Setting:
    """What :func:`setting` records in a field's metadata (see there)."""

    help: str
    minimum: int | None = None
    above: float | None = None
    choices: type[Enum] | None = None
    flag: str | None = None
    append: bool = False
    zero_is_none: bool = False
    unique: bool = False
    nonempty: bool = False
    cli: bool = True
    check: bool = True


def setting(
    default: Any = MISSING,
    *,
    help: str,
    default_factory: Any = MISSING,
    minimum: int | None = None,
    above: float | None = None,
    choices: type[Enum] | None = None,
    flag: str | None = None,
    append: bool = False,
    zero_is_none: bool = False,
    unique: bool = False,
    nonempty: bool = False,
    cli: bool = True,
    check: bool = True,
) -> Any:
    """A dataclass field with the rules of one setting.

    Args:
        default: the default value (or ``default_factory`` for lists and dicts).
        help: one line for ``--help``.
        minimum: smallest allowed int (``1``: a positive int).
        above: a float must be strictly greater than this.
        choices: the enum whose values a string (or each string of a list) must name; the
            value is stored as the member's ``.value``.
        flag: the option string (default ``--field-name``).
        append: a list flag given once per item (``--variant a --variant b``) instead of
            ``--flag a b``.
        zero_is_none: on the command line, ``0`` means ``None``.
        unique: drop repeated list items (keeping the first).
        nonempty: a list must hold at least one item.
        cli: make a flag for this setting.
        check: validate the value against the annotation (off for values the class checks
            itself).
    """
    rules = Setting(
        help=help,
        minimum=minimum,
        above=above,
        choices=choices,
        flag=flag,
        append=append,
        zero_is_none=zero_is_none,
        unique=unique,
        nonempty=nonempty,
        cli=cli,
        check=check,
    )
    return field(default=default, default_factory=default_factory, metadata={"setting": rules})


def _rules(item: Field[Any]) -> Setting | None:
    return item.metadata.get("setting")


def _shape(hint: Any) -> tuple[Any, bool, bool]:
    """``(item type, optional, is list)`` of an annotation such as ``list[int] | None``."""
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


def _describe(kind: Any, rules: Setting) -> str:
    if kind is int and rules.minimum == 1:
        return "a positive int"
    if kind is int and rules.minimum == 0:
        return "a non-negative int"
    if kind is int and rules.minimum is not None:
        return f"an int >= {rules.minimum}"
    return {int: "an int", float: "a number", bool: "a bool", str: "a str"}.get(kind, str(kind))


def _check_item(value: Any, kind: Any, rules: Setting, name: str, optional: bool) -> Any:
    expected = _describe(kind, rules) + (" or None" if optional else "")
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool; got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__})")
        if rules.minimum is not None and value < rules.minimum:
            raise ValueError(f"{name} must be {expected}; got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number; got {value!r} ({type(value).__name__})")
        if rules.above is not None and not value > rules.above:
            raise ValueError(f"{name} must be > {rules.above:g}; got {value!r}")
        return float(value)
    if kind is str:
        if rules.choices is not None:
            return resolve_option(value, rules.choices, name=name).value
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str; got {value!r} ({type(value).__name__})")
        return value
    origin = typing.get_origin(kind) or kind
    if isinstance(origin, type) and not isinstance(value, origin):
        raise TypeError(f"{name} must be a {origin.__name__}; got {type(value).__name__}")
    return value


def check_fields(settings: Any) -> None:
    """Validate and normalise, in place, every :func:`setting` field of ``settings``.

    Lists accept a single item (it becomes a one-item list); numbers become ``float`` where
    the annotation says ``float``; strings with ``choices`` become the enum's value.

    Raises:
        TypeError: a value of the wrong type, naming the setting, the value and its type.
        ValueError: a value out of range or not among the choices, naming the setting, the
            value and what is allowed.
    """
    hints = typing.get_type_hints(type(settings))
    for item in fields(settings):
        rules = _rules(item)
        if rules is None or not rules.check:
            continue
        name = item.name
        kind, optional, is_list = _shape(hints[name])
        value = getattr(settings, name)
        if value is None and optional:
            continue
        if is_list:
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"{name} must be a list; got {type(value).__name__}")
            value = [_check_item(v, kind, rules, name, optional=False) for v in value]
            if rules.unique:
                value = list(dict.fromkeys(value))
            if rules.nonempty and not value:
                allowed = f" of {[m.value for m in rules.choices]}" if rules.choices else ""
                raise ValueError(f"{name} must hold at least one value{allowed}; got []")
        else:
            value = _check_item(value, kind, rules, name, optional)
        setattr(settings, name, value)


def check_known(values: Iterable[str], cls: type, *, what: str) -> None:
    """Raise :class:`ValueError` when ``values`` holds names that are not fields of ``cls``."""
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{what} {unknown}; allowed: {sorted(known)}")


def add_flags(parser: Any, cls: type, *, skip: Iterable[str] = ()) -> None:
    """Add one flag per :func:`setting` field of ``cls`` to ``parser`` (or a group).

    Every flag defaults to ``None`` ("not given"), so a preset or a config file can fill
    the setting; :func:`flag_values` collects the given ones. A ``bool`` that defaults to
    ``False`` is a switch (``--resume``); one that defaults to ``True`` gets ``--x`` and
    ``--no-x``. Lists take several values (``--seeds 0 1``) or, with ``append``, one per
    flag. A field annotated ``int | str`` takes a string.
    """
    hints = typing.get_type_hints(cls)
    excluded = set(skip)
    for item in fields(cls):
        rules = _rules(item)
        if rules is None or not rules.cli or item.name in excluded:
            continue
        option = rules.flag or "--" + item.name.replace("_", "-")
        kind, _optional, is_list = _shape(hints[item.name])
        common = {"dest": item.name, "default": None, "help": rules.help}
        if kind is bool:
            if item.default is True:
                parser.add_argument(option, action=argparse.BooleanOptionalAction, **common)
            else:
                parser.add_argument(option, action="store_const", const=True, **common)
            continue
        kind = kind if kind in (int, float) else str
        if is_list and rules.append:
            parser.add_argument(option, type=kind, action="append", **common)
        else:
            parser.add_argument(option, type=kind, nargs="+" if is_list else None, **common)


def flag_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The settings of ``cls`` given as flags in ``args`` (``0`` → ``None`` where a setting
    says ``zero_is_none``)."""
    values: dict[str, Any] = {}
    for item in fields(cls):
        rules = _rules(item)
        given = getattr(args, item.name, None) if rules is not None and rules.cli else None
        if given is None:
            continue
        values[item.name] = None if (rules and rules.zero_is_none and given == 0) else given
    return values
