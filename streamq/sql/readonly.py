"""A guarded connection for SQL that arrives from outside: the control socket, later the fleet.

The guard is layered, so one mistake in a layer is not a hole:

- an authorizer allows reading only: ``SELECT``, reading columns, calling functions
  (``load_extension`` excepted), recursive CTEs, and a few introspection pragmas
  (``table_info``, ``module_list``, ...); everything else is refused while the
  statement is prepared, naming what was refused;
- ``PRAGMA query_only``, ``SQLITE_DBCONFIG_DEFENSIVE``, no triggers, no untrusted
  schema, extension loading off, ``SQLITE_LIMIT_ATTACHED = 0``;
- a deadline through the progress handler, a row cap (the reply says it was
  truncated) and one statement per request.

The connection belongs to the thread that opened it (the daemon's SQL thread).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import apsw

from ..errors import QueryError
from ..ring import Rings
from .connection import Connection, Params, _message, connect
from .schema import REGISTRY
from .session import DaemonHandle, EventWindow

# What SELECT needs, CTEs and window functions included (SQLite reports those as SELECT).
_ALLOWED = frozenset({apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_RECURSIVE})
_DENIED_FUNCTIONS = frozenset({"load_extension"})
# Pragmas that only describe the schema; a statement or a table-valued function alike.
_READ_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "function_list",
        "module_list",
        "pragma_list",
        "collation_list",
        "compile_options",
    }
)
_LIMITS = {
    apsw.SQLITE_LIMIT_ATTACHED: 0,
    apsw.SQLITE_LIMIT_LENGTH: 16 * 1024 * 1024,  # one string or blob; the default is 1 GB
    apsw.SQLITE_LIMIT_SQL_LENGTH: 1024 * 1024,
}
# Statements whose kind reads; the authorizer and SQLite's own read-only verdict decide the rest.
_READING_STATEMENTS = frozenset({"SELECT", "WITH", "VALUES", "PRAGMA", "EXPLAIN"})
_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*\n?|/\*.*?\*/)*([A-Za-z]+)", re.DOTALL)
_PROGRESS_STEPS = 1000  # VDBE instructions between deadline checks: ~10-50 us


@dataclass(frozen=True)
class Limits:
    """The most a request may ask for; a request may ask for less, never more."""

    max_rows: int = 100_000
    deadline: float = 10.0
    max_reply_bytes: int = 16 * 1024 * 1024  # the reply as JSON, about; past it the request fails


class Result(NamedTuple):
    columns: list[str]
    rows: list[tuple]
    truncated: bool
    cut: str | None = None  # which cap truncated it: "rows" or "bytes" (only when asked to cut at the byte cap)


class ReadOnlyConnection:
    """Runs one read-only statement at a time under :class:`Limits`; open and use it on one thread."""

    def __init__(self, conn: Connection, limits: Limits) -> None:
        self.conn = conn
        self.limits = limits
        self._refused: str | None = None  # what the authorizer refused while preparing
        self._stopping = False
        guard(conn.apsw, self._authorizer)

    @classmethod
    def open(
        cls, *, rings: Rings | None = None, daemon: DaemonHandle | None = None, limits: Limits = Limits()
    ) -> ReadOnlyConnection:
        """A guarded connection seeing ``rings`` and, for the streamq_* tables, ``daemon``."""
        return cls(connect(rings=rings, daemon=daemon), limits)

    def run(
        self,
        sql: str,
        params: Params = None,
        *,
        deadline: float | None = None,
        max_rows: int | None = None,
        max_reply_bytes: int | None = None,
        cut_at_bytes: bool = False,
    ) -> Result:
        """Run one statement; raise QueryError with a one-line reason if it is refused or fails.

        Past the byte cap (``max_reply_bytes`` may lower the limit's) the request fails, or with
        ``cut_at_bytes`` the rows read so far are the result, truncated (the web console's choice:
        a person would rather see the first rows than none)."""
        seconds = _cap(deadline, self.limits.deadline)
        cap = int(_cap(max_rows, self.limits.max_rows))
        byte_cap = int(_cap(max_reply_bytes, self.limits.max_reply_bytes))
        raw = self.conn.apsw
        statements = 0
        columns: list[str] = []

        def trace(cursor: apsw.Cursor, statement: str, bindings: Any) -> bool:
            nonlocal statements
            statements += 1
            if statements > 1:
                return False
            # The authorizer is asked nothing by some statements (a bare REINDEX with no index
            # to rebuild compiles to nothing, and SQLite calls it read-only): the statement's
            # kind must be one that reads, and SQLite must agree that it only reads.
            kind = _first_word(statement)
            if kind not in _READING_STATEMENTS or not cursor.is_readonly:
                self._refused = self._refused or kind
                return False
            columns[:] = [d[0] for d in cursor.get_description()]
            return True

        end = time.monotonic() + seconds
        raw.set_progress_handler(lambda: time.monotonic() > end, _PROGRESS_STEPS)
        self._refused = None
        cursor = raw.cursor()
        cursor.exec_trace = trace
        rows: list[tuple] = []
        cut = None
        budget = byte_cap
        try:
            for row in cursor.execute(sql, params):
                if len(rows) >= cap:
                    cut = "rows"
                    break
                budget -= reply_size(row)
                if budget < 0:  # stop reading now: the rows so far are what the memory holds
                    if cut_at_bytes:
                        cut = "bytes"
                        break
                    raise QueryError(
                        f"the reply would be over {byte_cap} bytes (max_reply_bytes) "
                        f"after {len(rows)} rows: ask for fewer rows or smaller columns"
                    )
                rows.append(row)
        except apsw.ExecTraceAbort:
            if self._refused:
                raise QueryError(f"not allowed on the read-only connection: {self._refused}") from None
            raise QueryError("one statement per request") from None
        except apsw.AuthError as err:
            raise QueryError(f"not allowed on the read-only connection: {self._refused or _message(err)}") from None
        except apsw.InterruptError:
            if self._stopping:
                raise QueryError("query interrupted: the daemon is stopping") from None
            raise QueryError(f"query interrupted: it ran past its {seconds:g}s deadline") from None
        except apsw.Error as err:
            raise QueryError(_message(err), offset=_offset(sql, err)) from None
        except QueryError:
            raise
        except Exception as err:  # a table generator failed: its message, not a traceback
            raise QueryError(f"{type(err).__name__}: {err}") from None
        finally:
            raw.set_progress_handler(None)
            cursor.close(force=True)
        return Result(columns, rows, cut is not None, cut)

    def prepare(self, sql: str) -> None:
        """Prepare ``sql`` as :meth:`run` would, without running it; QueryError if it could not run.

        Beyond what preparing finds (syntax, unknown tables and columns, the guard), the
        plan must give every table that needs a constraint (``file``, ``hash``) one.
        """
        if "\0" in sql:
            raise QueryError("the SQL holds a NUL character")
        kind = _first_word(sql)
        if kind not in _READING_STATEMENTS:
            raise QueryError(f"not allowed on the read-only connection: {kind}")
        self._refused = None
        try:
            plan = list(self.conn.apsw.cursor().execute(sql, explain=2))
        except apsw.AuthError as err:
            raise QueryError(f"not allowed on the read-only connection: {self._refused or _message(err)}") from None
        except apsw.Error as err:
            raise QueryError(_message(err)) from None
        for row in plan:
            missing = _missing_constraint(str(row[-1]))
            if missing:
                raise QueryError(missing)

    def follow(
        self, sql: str, floors: Mapping[str, int] | None, *, deadline: float | None = None, max_rows: int | None = None
    ) -> tuple[Result, dict[str, int]]:
        """One step of a live query: ``sql`` over the events after ``floors``; also the next floors.

        ``floors`` None starts following: the event tables ``sql`` reads are found, no
        event is read (only the column names), and the floors are each ring's newest eid.
        Passing the floors returned each time reads every event exactly once.
        """
        session = self.conn.session
        if floors is None:
            floors = {t: session.rings[t].last_eid for t in self.event_tables(sql)}
            window = EventWindow(floors, floors)
        else:
            unknown = [t for t in floors if t not in session.rings]
            if unknown:
                raise QueryError(f"no event ring named {', '.join(unknown)}")
            window = EventWindow.after(session.rings, floors)
        return self.over(sql, window, deadline=deadline, max_rows=max_rows), window.ceilings

    def over(
        self, sql: str, window: EventWindow, *, deadline: float | None = None, max_rows: int | None = None
    ) -> Result:
        """:meth:`run` with the event tables reading only ``window`` (new events, or one time window's rows)."""
        with window.apply(self.conn.session):
            return self.run(sql, deadline=deadline, max_rows=max_rows)

    def event_tables(self, sql: str) -> list[str]:
        """The event tables ``sql`` reads that have a ring here; QueryError when it reads none."""
        read = self.conn.tables_read(sql)
        rings = self.conn.session.rings
        tables = sorted(t for t in read if t in rings)
        if not tables:
            known = ", ".join(sorted(rings)) or "none: no event source runs"
            raise QueryError(f"a live query reads an event table that a running source fills ({known})")
        return tables

    def interrupt(self) -> None:
        """Stop the statement running now, from any thread (sqlite3_interrupt is made for that)."""
        self._stopping = True
        self.conn.apsw.interrupt()

    def close(self) -> None:
        self.conn.close()

    def _authorizer(self, op: int, p1: str | None, p2: str | None, db: str | None, trigger: str | None) -> int:
        if op in _ALLOWED:
            return apsw.SQLITE_OK
        if op == apsw.SQLITE_FUNCTION and p2 not in _DENIED_FUNCTIONS:
            return apsw.SQLITE_OK
        if op == apsw.SQLITE_PRAGMA and p1 and p1.lower() in _READ_PRAGMAS:
            return apsw.SQLITE_OK
        if self._refused is None:
            self._refused = _describe(op, p1, p2)
        return apsw.SQLITE_DENY


def guard(raw: apsw.Connection, authorizer) -> None:
    """Make ``raw`` read-only: settings first (they need PRAGMA), then the authorizer."""
    raw.execute("PRAGMA query_only = 1")
    raw.enable_load_extension(False)
    raw.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
    raw.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
    raw.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 0)
    raw.config(apsw.SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0)
    for limit, value in _LIMITS.items():
        raw.limit(limit, value)
    raw.authorizer = authorizer


def _cap(asked: float | int | None, most: float | int) -> float:
    if asked is None:
        return most
    if asked <= 0:  # never "no limit": a caller that means none leaves it out
        raise QueryError("deadline and max_rows must be above zero")
    return min(asked, most)


def reply_size(row: tuple) -> int:
    """About how many bytes ``row`` takes in a JSON reply (BLOBs go as hex: twice their length)."""
    size = 2
    for value in row:
        if isinstance(value, str):
            size += (len(value) if value.isascii() else len(value.encode())) + 3
        elif isinstance(value, bytes):
            size += 2 * len(value) + 3
        else:
            size += 21  # a number, or null
    return size


def _offset(sql: str, err: apsw.Error) -> int | None:
    """SQLite's error offset (bytes of UTF-8) as a character index into ``sql``; None when it gave none."""
    offset = getattr(err, "error_offset", -1)
    if not isinstance(offset, int) or offset < 0:
        return None
    return len(sql.encode()[:offset].decode(errors="ignore"))


def _describe(op: int, p1: str | None, p2: str | None) -> str:
    action = apsw.mapping_authorizer_function.get(op, str(op))
    action = action.removeprefix("SQLITE_").replace("_", " ")
    if op == apsw.SQLITE_FUNCTION:
        return f"function {p2}()"
    if op == apsw.SQLITE_PRAGMA:
        return f"PRAGMA {p1}" + (f" = {p2}" if p2 else "")
    if op in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH):
        return action
    if p1 in ("sqlite_master", "sqlite_temp_master"):  # CREATE, DROP and ANALYZE first ask to write it
        return "changing the schema (CREATE, DROP, ALTER, ANALYZE)"
    subject = p1 if p1 and op not in (apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT) else None
    return f"{action} {subject}" if subject else action


def _first_word(statement: str) -> str:
    """The statement's first keyword, upper case, after any comments."""
    match = _FIRST_WORD.match(statement)
    return match.group(1).upper() if match else "an empty statement"


def _missing_constraint(detail: str) -> str | None:
    """The error a plan step will raise when run: a table scanned without its required constraint."""
    _, sep, idx = detail.partition(" VIRTUAL TABLE INDEX ")
    if not sep:
        return None
    try:
        plan = json.loads(idx.partition(":")[2])
    except ValueError:
        return None
    if not isinstance(plan, dict) or not plan.get("m"):
        return None
    spec = REGISTRY.get(plan.get("t", ""))
    needs = " or ".join(spec.required) if spec is not None else "a column"
    return f"table {plan.get('t')} needs a constraint on {needs} (for example WHERE {needs.split()[0]} = '...')"
