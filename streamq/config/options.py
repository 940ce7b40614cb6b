"""The small schema language every config section is written in.

A section is a frozen dataclass whose fields are declared with :func:`option`:
the default and the check live next to the field, so a component (a source, a
sink) declares its options in its own module, as Vector's components do, and
the loader knows no component by name. A check takes the raw TOML value and
returns the clean one, or raises ValueError with a message for a person.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Checker = Callable[[Any], Any]
REQUIRED: Any = object()  # an option with no default: the loader names it when it is missing

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
SQL_TYPES = ("TEXT", "INTEGER", "BIGINT", "DOUBLE", "REAL")


def option(default: Any = None, check: Checker | None = None, *, doc: str = "", internal: bool = False) -> Any:
    """A dataclass field carrying its check; list and dict defaults are copied per instance.

    ``internal`` fields are filled by the loader (a key file's contents), never from TOML.
    """
    metadata = {"check": check, "doc": doc, "required": default is REQUIRED, "internal": internal}
    if default is REQUIRED:
        return dataclasses.field(default=None, metadata=metadata)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class OptionError(ValueError):
    """A component's own check failed on one of its options (``key``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def fields_of(cls: type) -> dict[str, dataclasses.Field]:
    """The fields a config file may set."""
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def coerce(cls: type, options: Any) -> Any:
    """``options`` as an instance of ``cls``: a mapping (from Python code, tests) is unpacked
    unchecked; None gives the defaults. Config files go through the loader's checks instead."""
    if options is None:
        return cls()
    if isinstance(options, cls):
        return options
    return cls(**options)


def required_fields(cls: type) -> list[str]:
    return [name for name, f in fields_of(cls).items() if f.metadata.get("required")]


# -- checks ---------------------------------------------------------------------------------------


def parse_duration(value: Any) -> float:
    """``"250ms"``, ``"1h"``, ``"30"`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '250ms', '5s' or '1h'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration like '250ms', '5s' or '1h'")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _type(kind: type, label: str) -> Checker:
    def check(value: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise ValueError(f"expected {label}, got a boolean")
        if not isinstance(value, kind):
            raise ValueError(f"expected {label}, got {type(value).__name__}")
        return value

    return check


STRING = _type(str, "a string")
BOOL = _type(bool, "true or false")


def positive_int(value: Any) -> int:
    value = _type(int, "an integer")(value)
    if value < 1:
        raise ValueError("expected a positive integer")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a non-negative integer")
    return value


def duration(value: Any) -> float:
    return parse_duration(value)


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("expected a duration above zero, like '250ms' or '5s'")
    return seconds


def percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError("expected a percentage from 0 to 100")
    return float(value)


def string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return value


def one_of(*choices: Any) -> Checker:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in choices:  # True == 1: not a valid qos
            raise ValueError(f"expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value

    return check


def subset_of(*choices: str) -> Checker:
    def check(value: Any) -> list[str]:
        items = string_list(value)
        bad = [v for v in items if v not in choices]
        if bad:
            raise ValueError(f"unknown value {bad[0]!r}; expected some of {', '.join(choices)}")
        return items

    return check


def column_types(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError('expected a table of column = "TYPE"')
    out = {}
    for name, kind in value.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValueError(f"column name {name!r} is not a plain identifier")
        if not isinstance(kind, str) or kind.upper() not in SQL_TYPES:
            raise ValueError(f"column {name}: type must be one of {', '.join(SQL_TYPES)}")
        out[name] = kind.upper()
    return out


def table_name(value: Any) -> str:
    value = STRING(value)
    if not re.match(r"^[a-z][a-z0-9_]*$", value):
        raise ValueError("table names are lower-case snake_case")
    return value


# -- the option bases components extend ------------------------------------------------------------


@dataclass(frozen=True)
class SourceOptions:
    """Options every event source has. A source module subclasses this next to its code."""

    enabled: bool = option(True, BOOL, doc="Run this source when a query reads its table.")


@dataclass(frozen=True)
class NamedSourceOptions(SourceOptions):
    """A source configured per instance (``[sources.jsonl.NAME]``) that fills a table it names."""

    table: str = option(None, table_name, doc="The event table it fills; NAME_events by default.")
    columns: dict = option({}, column_types, doc="Declared column types; other keys stay untyped.")


@dataclass(frozen=True)
class SinkOptions:
    """Options every sink has. A sink module subclasses this next to its code."""

    type: str = option(REQUIRED, STRING, doc="Which sink: a key of streamq.sinks.SINKS.")
    max_backlog_rows: int = option(1_000_000, positive_int, doc="Outbox rows kept while the sink fails.")
