"""What the daemon works out from its queries before it starts: learned columns, streaming checks.

* A jsonl or MQTT source with no declared ``columns`` gets every column the daemon's
  queries name, untyped (as ``tail`` learns them): each query is prepared against a
  scratch table and every column SQLite reports missing is added.
* A query's streaming options must fit its SQL: a window reads exactly one event table
  (and ``window_key`` names its columns), ``dedup`` names columns the SQL returns, and a
  stream query without a window must not aggregate (its numbers would depend on how
  rows were batched). Each failure is a ConfigError naming the file, line and key, so
  ``run --check`` and ``run`` refuse the same configs with exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import apsw

from ..config.sections import Config
from ..config.validation import Validator
from ..errors import ConfigError, QueryError
from ..sources import SOURCES, kind_of
from ..sources.records import declared_layout, filled_columns
from ..stream.pipeline import WINDOW_NAMES
from ..stream.sqlcheck import batch_dependence, result_names
from .queries import QuerySpec

_MISSING = re.compile(r"no such column: (?:[\w\"]+\.)?\"?([^\"]+)\"?$")
_MAX_LEARNED = 64


def undeclared_record_tables(config: Config) -> dict[str, tuple[str, Any]]:
    """table -> (source key, options), for jsonl/mqtt sources that declare no columns."""
    return {
        options.table: (key, options)
        for key, options in config.sources.items()
        if SOURCES[kind_of(key)].tables is None and not options.columns
    }


def learned_columns(config: Config) -> dict[str, list[str]]:
    """Per undeclared record table, the columns the config's queries name (the same at check and run)."""
    return learn_columns(config, [s for q in config.queries.values() for s in naming(config, q.sql, q.window_key)])


def naming(config: Config, sql: str, window_key: Iterable[str]) -> list[str]:
    """``sql``, and a query naming the session key's columns in each record table ``sql`` names:
    `window_key = ["user"]` names a column as the SQL does, so it is learned too."""
    cols = ", ".join("`" + c.replace("`", "``") + "`" for c in window_key)  # "user" would be a string
    if not cols:
        return [sql]
    tables = [t for t in undeclared_record_tables(config) if re.search(rf"\b{re.escape(t)}\b", sql, re.IGNORECASE)]
    return [sql, *(f'SELECT {cols} FROM "{t}"' for t in tables)]


def learn_columns(config: Config, sqls: Iterable[str]) -> dict[str, list[str]]:
    """Per undeclared record table, the columns ``sqls`` name that it lacks."""
    tables = undeclared_record_tables(config)
    learned: dict[str, list[str]] = {t: [] for t in tables}
    for table in list(tables):
        known = declared_layout(table)
        if known is not None:  # declared already (the check ran first): what it learned then
            learned[table] = [name for name, kind in known.items() if kind == ""]
            del tables[table]
    if not tables:
        return learned
    from ..sql.connection import connect

    conn = connect()
    try:
        for sql in sqls:
            if "\0" in sql:
                continue  # the check refuses it, naming the query
            named = [t for t in tables if re.search(rf"\b{re.escape(t)}\b", sql, re.IGNORECASE)]
            if named:
                _learn(conn.apsw, sql, {t: tables[t] for t in named}, learned)
    finally:
        conn.close()
    return learned


def _learn(db: apsw.Connection, sql: str, tables: Mapping[str, Any], learned: dict[str, list[str]]) -> None:
    for _ in range(_MAX_LEARNED):
        for table, (key, options) in tables.items():
            fixed = filled_columns(key, getattr(options, "time", None))
            cols = ", ".join(f'"{c}"' for c in [*learned[table], *fixed])
            db.execute(f'DROP TABLE IF EXISTS temp."{table}"; CREATE TEMP TABLE "{table}" ({cols})')
        try:
            db.execute("EXPLAIN " + sql).fetchall()
            return
        except apsw.SQLError as err:
            missing = _MISSING.search(str(err))
            if not missing:
                return  # another error: the query's run reports it
            name = missing.group(1)
            added = False
            for table in tables:
                if name.lower() not in {c.lower() for c in learned[table]}:
                    learned[table].append(name)
                    added = True
            if not added:
                return
        finally:
            for table in tables:
                db.execute(f'DROP TABLE IF EXISTS temp."{table}"')


def check_queries(conn: Any, config: Config, specs: Mapping[str, QuerySpec], fillable: Iterable[str]) -> None:
    """ConfigError for the first query whose streaming options do not fit its SQL."""
    event_tables = set(fillable)
    fail = Validator(config.text, config.path or "<config>").fail
    for name, spec in specs.items():
        try:
            read = conn.tables_read(spec.sql)
        except (QueryError, ValueError):
            continue  # SQL that cannot be prepared: the check's first step names it
        tables = sorted(t for t in read if t in event_tables)
        stream = spec.stream
        if stream.window is not None:
            if len(tables) != 1:
                found = ", ".join(tables) or "none"
                raise fail(
                    ("queries", name, "window"), f"a windowed query reads exactly one event table (it reads: {found})"
                )
            columns = {c.lower() for c in _table_columns(tables[0])}
            for column in stream.window_key:
                if column.lower() not in columns:
                    raise fail(("queries", name, "window_key"), f"{tables[0]} has no column {column!r}")
        elif spec.mode == "stream" and tables:
            reason = batch_dependence(conn.apsw, spec.sql, tables[0], option="window")
            if reason:
                raise fail(("queries", name, "sql"), reason)
        if stream.dedup:
            names = result_names(conn.apsw, spec.sql)
            try:
                stream.check_columns(names + (list(WINDOW_NAMES) if stream.window else []))
            except ValueError as err:
                raise fail(("queries", name, "dedup"), str(err)) from None


def _table_columns(table: str) -> list[str]:
    from ..sql.connection import load_tables

    spec = load_tables().get(table)
    return [c.name for c in spec.columns] if spec is not None else []


def check_streaming(config: Config, report: Any) -> None:
    """A step of streamq.daemon.check: each query's streaming options against its SQL."""
    from ..sources import table_sources
    from ..sql.connection import connect
    from .queries import query_specs

    specs = {name: spec for name, spec in query_specs(config).items() if name not in report.skipped}
    conn = connect()
    try:
        check_queries(conn, config, specs, table_sources(config.sources))
    except ConfigError as err:
        report.errors.append(str(err))
    finally:
        conn.close()
