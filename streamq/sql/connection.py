"""Connections: every registered table and SQL function on one APSW connection."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import apsw

from ..errors import QueryError
from ..ring import Rings
from . import functions, schema
from .session import DaemonHandle, Session
from .vtable import TableModule

Params = Sequence[Any] | Mapping[str, Any] | None
_loaded = False
PLUGIN_ERRORS: list[str] = []  # shown by the CLI on stderr


def load_tables() -> dict[str, schema.Table]:
    """Import built-in tables and plugins once; return the registry."""
    global _loaded
    if not _loaded:
        from . import plugins

        plugins.load_target(plugins.BUILTIN)  # a broken built-in table is a bug: let it raise
        plugins.load_target(plugins.SOURCE_TABLES)
        for name, err in plugins.load_plugins():
            # A broken plugin must not take the built-in tables down, nor vanish unseen.
            PLUGIN_ERRORS.append(f"plugin {name} not loaded: {type(err).__name__}: {err}")
        _loaded = True
    return schema.REGISTRY


class Connection:
    """An APSW connection with streamq's tables; ``.apsw`` is the raw connection."""

    def __init__(self, raw: apsw.Connection, session: Session) -> None:
        self.apsw = raw
        self.session = session

    def execute(self, sql: str, params: Params = None) -> tuple[list[str], Iterator[tuple]]:
        """Run ``sql``; return the column names and an iterator over row tuples."""
        cursor = self.apsw.cursor()
        names: list[str] = []

        def capture_names(cur: apsw.Cursor, statement: str, bindings: object) -> bool:
            # The names are only known while the statement is prepared; a query with no
            # rows completes inside execute() and would leave none to ask for afterwards.
            names[:] = [d[0] for d in cur.get_description()]
            return True

        cursor.exec_trace = capture_names
        try:
            rows = cursor.execute(sql, params)
        except apsw.Error as err:
            raise QueryError(_message(err)) from err
        return names, _wrap_errors(rows)

    def query(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Run ``sql`` and return every row as a dict keyed by column name."""
        names, rows = self.execute(sql, params)
        return [dict(zip(names, row)) for row in rows]

    def tables(self) -> list[str]:
        return sorted(schema.REGISTRY)

    def tables_read(self, sql: str) -> set[str]:
        """Names of the tables ``sql`` reads, found by preparing it (EXPLAIN) under an authorizer."""
        found: set[str] = set()

        def authorizer(op: int, p1: str | None, p2: str | None, db: str | None, trigger: str | None) -> int:
            if op == apsw.SQLITE_READ and p1:
                found.add(p1)
            return apsw.SQLITE_OK

        previous = self.apsw.authorizer
        self.apsw.authorizer = authorizer
        try:
            for _ in self.apsw.cursor().execute(sql, explain=1):
                pass
        except apsw.Error as err:
            raise QueryError(_message(err)) from err
        finally:
            self.apsw.authorizer = previous
        return found

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
    text = rest if sep and head.endswith("Error") else text
    if not text.strip() or text.strip() == "<NULL>":  # APSW had no message for it: say what we know
        return f"SQLite reported {type(err).__name__} without a message"
    return text


def connect(
    path: str = ":memory:",
    *,
    tables: Iterable[str] | None = None,
    rings: Rings | None = None,
    daemon: DaemonHandle | None = None,
) -> Connection:
    """A connection with every registered table (or only ``tables``) and osquery's SQL functions.

    ``rings`` holds the event tables' rows (filled by running sources); without
    it event tables are empty, as in osqueryi without an events daemon. ``daemon``
    is the running daemon the streamq_* tables describe.
    """
    registry = load_tables()
    raw = apsw.Connection(path)
    session = Session(rings, daemon)
    wanted = registry if tables is None else {n: registry[n] for n in tables}
    for name, spec in wanted.items():
        module = TableModule(spec, session)
        raw.create_module(name, module, use_bestindex_object=True, eponymous_only=True, read_only=True)
    functions.register(raw)
    return Connection(raw, session)
