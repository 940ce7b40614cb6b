"""Typed sections from raw TOML, and errors that name the file, line and key path of a mistake.

tomllib reports syntax errors with a line but gives no positions for valid
documents, so :func:`line_of` finds a key's line by scanning table headers and
``key =`` lines; good enough to point a person at the mistake.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError
from .options import fields_of, required_fields


def line_of(text: str, path: tuple[str, ...]) -> int | None:
    """The line where the key ``path`` is set, found by scanning headers and assignments.

    An exact match wins; otherwise the line of the longest prefix of ``path``
    (an inline table, or the section header) is the best pointer we have; failing
    that, the first key under ``path`` (``[sinks.x]`` for ``sinks``).
    """
    current: tuple[str, ...] = ()
    best, best_len, under = None, 0, None
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
        if under is None and full[: len(path)] == path:
            under = number
    return best if best is not None else under


def _key_parts(key: str) -> list[str]:
    return [p.strip().strip("\"'") for p in key.split(".")]


class Validator:
    """Builds typed sections from raw TOML; every failure names the file, line and key path."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename

    def fail(self, path: tuple[str, ...], message: str) -> ConfigError:
        line = line_of(self.text, path)
        where = f"{self.filename}:{line}" if line else self.filename
        return ConfigError(f"{where}: {'.'.join(path)}: {message}")

    def section(self, path: tuple[str, ...], data: Any, cls: type, **given: Any) -> Any:
        """An instance of the options dataclass ``cls`` from the table ``data``."""
        if not isinstance(data, dict):
            raise self.fail(path, "expected a table")
        fields = fields_of(cls)
        clean = {}
        for key, value in data.items():
            if key not in fields:
                raise self.fail((*path, key), f"unknown key (expected one of {', '.join(fields)})")
            check = fields[key].metadata.get("check")
            try:
                clean[key] = check(value) if check else value
            except ValueError as err:
                raise self.fail((*path, key), str(err)) from None
        clean.update(given)
        for key in required_fields(cls):
            if clean.get(key) is None:
                raise self.fail(path, f"missing required key {key!r}")
        return cls(**clean)
