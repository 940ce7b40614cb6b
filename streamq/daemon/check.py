"""`streamq run --check`: everything `run` would refuse, found without starting anything.

`run` calls :func:`check` at start and on reload too, so when `--check` says ok, `run`
starts and no query fails at preparation. Each step of :data:`CHECKS` is a function
``(config, report)`` that adds errors (run refuses to start), warnings (run starts and
says so) or skipped pack queries; a new query option adds its own step here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..config.sections import Config
from ..config.validation import Validator
from ..errors import QueryError
from ..sinks import sink_class
from ..sinks.file import writable_file_problem
from ..sources import SOURCES, kind_of, manager
from ..sql.connection import connect
from ..sql.readonly import Limits, ReadOnlyConnection
from ..sql.statements import split
from .checks import check_streaming, learned_columns


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)  # any: `run` refuses to start
    warnings: list[str] = field(default_factory=list)  # `run` starts, and logs each
    skipped: dict[str, str] = field(default_factory=dict)  # pack query -> why it cannot run here

    @property
    def ok(self) -> bool:
        return not self.errors


def check(config: Config) -> Report:
    """Run every step of :data:`CHECKS` over ``config``."""
    report = Report()
    for step in CHECKS:
        step(config, report)
    return report


def prepare_query(ro: ReadOnlyConnection, sql: str) -> None:
    """One continuous query's SQL, prepared under the read-only rules; QueryError says why it cannot run."""
    if "\0" in sql:
        raise QueryError("the SQL holds a NUL character")
    statements = split(sql)
    if not statements:
        raise QueryError("the SQL is empty (only whitespace or comments)")
    if len(statements) > 1:
        raise QueryError(f"one statement per query, found {len(statements)}")
    ro.prepare(sql)


def check_queries(config: Config, report: Report) -> None:
    """Prepare every query against the real tables (configured stream tables included)."""
    manager.declare_stream_tables(config.sources, learned_columns(config))
    ro = ReadOnlyConnection(connect(), Limits())
    v = _validator(config)
    own = config.raw.get("queries", {})
    try:
        for name, query in config.queries.items():
            try:
                prepare_query(ro, query.sql)
            except QueryError as err:
                if name in own:
                    report.errors.append(str(v.fail(("queries", name, "sql"), str(err))))
                else:  # from an osquery pack: a table this host lacks skips the query, not the daemon
                    report.skipped[name] = str(err)
    finally:
        ro.close()


def other_sql(config: Config) -> Iterator[tuple[tuple[str, ...], str]]:
    """The SQL besides the queries, with where it is in the config: labels and decorators."""
    for name, label in config.labels.items():
        yield ("labels", name, "sql"), label.sql
    decorators = config.decorators
    for kind in ("load", "always"):
        for sql in getattr(decorators, kind):
            yield ("decorators", kind), sql
    for seconds, sqls in decorators.interval.items():
        for sql in sqls:
            yield ("decorators", "interval", f"{seconds:g}"), sql


def check_other_sql(config: Config, report: Report) -> None:
    """Labels and decorators prepare as a query does: a mistake there refuses the config too."""
    ro = ReadOnlyConnection(connect(), Limits())
    v = _validator(config)
    try:
        for where, sql in other_sql(config):
            try:
                prepare_query(ro, sql)
            except QueryError as err:
                report.errors.append(str(v.fail(where, str(err))))
    finally:
        ro.close()


def check_sinks(config: Config, report: Report) -> None:
    """Each sink's own checks on this host (its directory is writable, ...), as start() would need."""
    v = _validator(config)
    for name, options in config.sinks.items():
        for key, problem in sink_class(options.type).preflight(options):
            report.errors.append(str(v.fail(("sinks", name, key), problem)))


def check_sources(config: Config, report: Report) -> None:
    """What each source would warn about at start (a watch path that does not exist yet, ...)."""
    for key, options in config.sources.items():
        source = SOURCES[kind_of(key)].load()
        report.warnings += [f"sources.{key}: {w}" for w in source.warnings(options)]


def check_state(config: Config, report: Report) -> None:
    """The state database can be created where [state] path says."""
    problem = writable_file_problem(os.path.abspath(config.state.path))
    if problem:
        report.errors.append(str(_validator(config).fail(("state", "path"), problem)))


def _validator(config: Config) -> Validator:
    return Validator(config.text, config.path or "<config>")


CHECKS: list[Callable[[Config, Report], None]] = [
    check_state,
    check_queries,
    check_other_sql,
    check_streaming,  # window, window_key, dedup and aggregates against each query's SQL
    check_sinks,
    check_sources,
]
