"""Connections: every registered table and SQL function on one APSW connection."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import apsw

from . import functions, schema
from .errors import QueryError
from .vtable import TableModule

Params = Sequence[Any] | Mapping[str, Any] | None
_loaded = False


def load_tables() -> dict[str, schema.Table]:
    """Import built-in tables and plugins once; return the registry."""
    global _loaded
    if not _loaded:
        from . import plugins, tables

        tables.load_builtin()
        plugins.load_plugins()
        _loaded = True
    return schema.REGISTRY


class Connection:
    """An APSW connection with streamq's tables; ``.apsw`` is the raw connection."""

    def __init__(self, raw: apsw.Connection) -> None:
        self.apsw = raw

    def execute(self, sql: str, params: Params = None) -> tuple[list[str], Iterator[tuple]]:
        """Run ``sql``; return the column names and an iterator over row tuples."""
        cursor = self.apsw.cursor()
        try:
            rows = cursor.execute(sql, params)
            try:
                names = [d[0] for d in cursor.get_description()]
            except apsw.ExecutionCompleteError:
                names = []
            return names, _wrap_errors(rows)
        except apsw.Error as err:
            raise QueryError(_message(err)) from err

    def query(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Run ``sql`` and return every row as a dict keyed by column name."""
        names, rows = self.execute(sql, params)
        return [dict(zip(names, row)) for row in rows]

    def tables(self) -> list[str]:
        return sorted(schema.REGISTRY)

    def close(self) -> None:
        self.apsw.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wrap_errors(rows: Iterable[tuple]) -> Iterator[tuple]:
    try:
        yield from rows
    except apsw.Error as err:
        raise QueryError(_message(err)) from err


def _message(err: apsw.Error) -> str:
    text = str(err)
    # APSW prefixes the class name ("SQLError: no such table: x"); keep SQLite's words.
    head, sep, rest = text.partition(": ")
    return rest if sep and head.endswith("Error") else text


def connect(path: str = ":memory:", *, tables: Iterable[str] | None = None) -> Connection:
    """A connection with every registered table (or only ``tables``) and osquery's SQL functions."""
    registry = load_tables()
    raw = apsw.Connection(path)
    wanted = registry if tables is None else {n: registry[n] for n in tables}
    for name, spec in wanted.items():
        raw.create_module(name, TableModule(spec), use_bestindex_object=True, eponymous_only=True, read_only=True)
    functions.register(raw)
    return Connection(raw)
