"""TOML configuration: load, validate, and name the key path and line of every mistake.

tomllib reports syntax errors with a line but gives no positions for valid
documents, so :func:`line_of` finds a key's line by scanning table headers and
``key =`` lines; good enough to point a person at the mistake.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
SQL_TYPES = ("TEXT", "INTEGER", "BIGINT", "DOUBLE", "REAL")


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


# -- a small schema language: each checker returns the cleaned value or raises ValueError ----

Checker = Callable[[Any], Any]


def _type(kind: type | tuple[type, ...], label: str) -> Checker:
    def check(value: Any) -> Any:
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
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


def duration(value: Any) -> float:
    return parse_duration(value)


def string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return value


def one_of(*choices: str) -> Checker:
    def check(value: Any) -> str:
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


# Each section: key -> (checker, default). A key missing from the file gets its default.
SOURCE_OPTIONS: dict[str, dict[str, tuple[Checker, Any]]] = {
    "process": {
        "enabled": (BOOL, True),
        "mode": (one_of("auto", "netlink", "poll"), "auto"),
        "poll_interval": (duration, 0.1),
        "priority": (one_of("normal", "high", "realtime"), "realtime"),
    },
    "file": {
        "enabled": (BOOL, True),
        "paths": (string_list, []),
        "exclude": (string_list, []),
        "hash": (subset_of("md5", "sha1", "sha256"), []),
        "hash_max_bytes": (positive_int, 50_000_000),
    },
    "socket": {"enabled": (BOOL, True), "interval": (duration, 0.25), "connections_interval": (duration, 1.0)},
    "network": {"enabled": (BOOL, True)},
    "hardware": {"enabled": (BOOL, True)},
}
NAMED_SOURCE_OPTIONS: dict[str, dict[str, tuple[Checker, Any]]] = {
    "jsonl": {
        "path": (STRING, None),
        "columns": (column_types, {}),
        "table": (STRING, None),
        "checkpoint": (STRING, None),
        "max_line_bytes": (positive_int, 1_048_576),
        "from_start": (BOOL, False),
        "poll_interval": (duration, 0.1),
    },
    "mqtt": {
        "url": (STRING, None),
        "topic": (STRING, None),
        "columns": (column_types, {}),
        "table": (STRING, None),
        "qos": (one_of(0, 1, 2), 1),  # type: ignore[arg-type]
        "max_line_bytes": (positive_int, 1_048_576),
    },
}
REQUIRED_NAMED = {"jsonl": ("path",), "mqtt": ("url", "topic")}
RINGS_OPTIONS = {"capacity": (positive_int, 100_000), "max_age": (duration, 3600.0)}


@dataclass
class Config:
    """A validated configuration. ``sources[name]`` holds options with defaults filled in;
    named sources (jsonl, mqtt) are keyed ``"jsonl.app"`` and carry their table name."""

    path: str | None = None
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    rings: dict[str, Any] = field(default_factory=lambda: {k: d for k, (_, d) in RINGS_OPTIONS.items()})
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    # The daemon's sections (see streamq.config.daemon), filled when present.
    daemon: dict[str, Any] = field(default_factory=dict)


def line_of(text: str, path: tuple[str, ...]) -> int | None:
    """The line where the key ``path`` is set, found by scanning headers and assignments.

    An exact match wins; otherwise the line of the longest prefix of ``path``
    (an inline table, or the section header) is the best pointer we have.
    """
    current: tuple[str, ...] = ()
    best, best_len = None, 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?$", stripped)
        if header:
            current = tuple(_key_parts(header.group(1)))
            full = current
        else:
            assign = re.match(r"^([A-Za-z0-9_\-\"'. ]+?)\s*=", stripped)
            if not assign:
                continue
            full = current + tuple(_key_parts(assign.group(1)))
        if full == path:
            return number
        if path[: len(full)] == full and len(full) > best_len:
            best, best_len = number, len(full)
    return best


def _key_parts(key: str) -> list[str]:
    return [p.strip().strip("\"'") for p in key.split(".")]


class _Validator:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename

    def fail(self, path: tuple[str, ...], message: str) -> ConfigError:
        line = line_of(self.text, path)
        where = f"{self.filename}:{line}" if line else self.filename
        return ConfigError(f"{where}: {'.'.join(path)}: {message}")

    def section(self, path: tuple[str, ...], data: Any, spec: Mapping[str, tuple[Checker, Any]]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, "expected a table")
        out = {}
        for key, value in data.items():
            if key not in spec:
                raise self.fail((*path, key), f"unknown key (expected one of {', '.join(spec)})")
            try:
                out[key] = spec[key][0](value)
            except ValueError as err:
                raise self.fail((*path, key), str(err)) from None
        for key, (_, default) in spec.items():
            out.setdefault(key, default)
        return out


def parse(text: str, filename: str = "<config>") -> Config:
    """Validate TOML ``text``; raise ConfigError naming the file, line and key path."""
    import tomllib  # 40+ ms to import: only when there is a file to read

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        if "(at end of document)" in message:  # tomllib gives no line here; the end is the last line
            message = message.replace("(at end of document)", f"(at end of document, line {len(text.splitlines())})")
        raise ConfigError(f"{filename}: {message}") from None
    v = _Validator(text, filename)
    config = Config(path=filename, raw=raw, text=text)
    from . import daemon as daemon_config  # noqa: F401  (registers the daemon's sections)

    known = {"sources", "rings", *EXTRA_SECTIONS}
    for key in raw:
        if key not in known:
            raise v.fail((key,), f"unknown section (expected one of {', '.join(sorted(known))})")
    if "rings" in raw:
        config.rings = v.section(("rings",), raw["rings"], RINGS_OPTIONS)
    sources = raw.get("sources", {})
    if not isinstance(sources, dict):
        raise v.fail(("sources",), "expected a table")
    for name, options in sources.items():
        if name in SOURCE_OPTIONS:
            config.sources[name] = v.section(("sources", name), options, SOURCE_OPTIONS[name])
        elif name in NAMED_SOURCE_OPTIONS:
            if not isinstance(options, dict):
                raise v.fail(("sources", name), f"expected tables like [sources.{name}.NAME]")
            for instance, opts in options.items():
                path = ("sources", name, instance)
                clean = v.section(path, opts, NAMED_SOURCE_OPTIONS[name])
                for req in REQUIRED_NAMED[name]:
                    if clean.get(req) is None:
                        raise v.fail(path, f"missing required key {req!r}")
                clean["table"] = clean["table"] or f"{instance}_events"
                if not re.match(r"^[a-z][a-z0-9_]*$", clean["table"]):
                    raise v.fail((*path, "table"), "table names are lower-case snake_case")
                config.sources[f"{name}.{instance}"] = clean
        else:
            expected = ", ".join([*SOURCE_OPTIONS, *NAMED_SOURCE_OPTIONS])
            raise v.fail(("sources", name), f"unknown source (expected one of {expected})")
    for section, check in EXTRA_SECTIONS.items():
        if section in raw:
            check(v, config, raw[section])
    for final in FINAL_CHECKS:
        final(v, config)
    return config


# Later layers (the daemon) add sections here: name -> check(validator, config, data).
EXTRA_SECTIONS: dict[str, Callable[[_Validator, Config, Any], None]] = {}
# Checks across sections (a query naming a sink), run after every section.
FINAL_CHECKS: list[Callable[[_Validator, Config], None]] = []


def load(path: str | Path | None) -> Config:
    """Read and validate the config file at ``path``; None gives the defaults."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config {path}: {getattr(err, 'strerror', None) or err}") from None
    return parse(text, str(path))
