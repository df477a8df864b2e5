"""The shared settings validator and flag builder (``deepsets._settings``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest

from deepsets._settings import add_flags, check_fields, check_known, flag_values, setting


class Colour(str, Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Toy:
    count: int = setting(1, help="a positive count", minimum=1)
    offset: int = setting(0, help="any int")
    rate: float = setting(0.5, help="a rate", above=0)
    name: str = setting("x", help="a name")
    colour: str = setting("red", help="a colour", choices=Colour)
    colours: list[str] = setting(
        default_factory=lambda: ["red"], help="colours", choices=Colour, unique=True, nonempty=True
    )
    sizes: list[int] = setting(default_factory=lambda: [2], help="sizes", minimum=1)
    limit: int | None = setting(None, help="a limit (0: none)", minimum=1, zero_is_none=True)
    quiet: bool = setting(False, help="a switch")
    draw: bool = setting(True, help="drawn by default")
    extra: dict[str, Any] = setting(default_factory=dict, help="a table", cli=False)

    def __post_init__(self) -> None:
        check_fields(self)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"count": 0}, ValueError, "count must be a positive int; got 0"),
        ({"count": 2.0}, TypeError, r"count must be an int; got 2.0 \(float\)"),
        ({"count": True}, TypeError, r"count must be an int; got True \(bool\)"),
        ({"offset": "3"}, TypeError, "offset must be an int; got '3'"),
        ({"rate": 0}, ValueError, "rate must be > 0; got 0"),
        ({"rate": "fast"}, TypeError, "rate must be a number; got 'fast'"),
        ({"name": 3}, TypeError, r"name must be a str; got 3 \(int\)"),
        ({"colour": "green"}, ValueError, "colour must be one of 'red', 'blue'; got 'green'"),
        ({"colours": []}, ValueError, r"colours must hold at least one value of \['red', 'blue'\]"),
        ({"colours": {"red"}}, TypeError, "colours must be a list; got set"),
        ({"sizes": [2, 0]}, ValueError, "sizes must be a positive int; got 0"),
        ({"limit": 0}, ValueError, "limit must be a positive int or None; got 0"),
        ({"quiet": 1}, TypeError, "quiet must be a bool; got 1"),
        ({"extra": []}, TypeError, "extra must be a dict; got list"),
    ],
)
def test_bad_values_name_the_setting(change: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Toy(**change)


def test_values_are_normalised() -> None:
    toy = Toy(rate=2, colour="BLUE", colours=["blue", "red", "blue"], sizes=3, limit=None)
    assert toy.rate == 2.0 and isinstance(toy.rate, float)
    assert toy.colour == "blue" and toy.colours == ["blue", "red"] and toy.sizes == [3]
    assert Toy(colours="red").colours == ["red"]


def test_flags_come_from_the_fields() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, Toy, skip=("offset",))
    options = {option for action in parser._actions for option in action.option_strings}
    assert {"--count", "--rate", "--colours", "--sizes", "--limit", "--quiet"} <= options
    assert {"--draw", "--no-draw"} <= options
    assert "--offset" not in options and "--extra" not in options
    assert flag_values(parser.parse_args([]), Toy) == {}
    args = parser.parse_args(
        ["--count", "3", "--rate", "0.1", "--sizes", "4", "5", "--limit", "0", "--quiet"]
    )
    given = flag_values(args, Toy)
    assert given == {"count": 3, "rate": 0.1, "sizes": [4, 5], "limit": None, "quiet": True}
    assert flag_values(parser.parse_args(["--no-draw"]), Toy) == {"draw": False}
    with pytest.raises(SystemExit):
        parser.parse_args(["--count", "many"])


def test_unknown_names_are_listed() -> None:
    check_known(["count"], Toy, what="toy has unknown settings")
    with pytest.raises(ValueError, match=r"toy has unknown settings \['cuont'\]; allowed: \["):
        check_known(["cuont", "count"], Toy, what="toy has unknown settings")
