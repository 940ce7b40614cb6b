"""A fleet fragment checked on the host that would run it, with `run --check`'s rules.

The fragment was validated by the config loader against this host's sources and sinks
(streamq.config.fragments). Here it goes through streamq.daemon.check as part of this
host's config, so every query is prepared under the read-only rules as `run --check`
prepares a config file's; its labels and decorators are prepared the same way. A
fragment whose SQL could write, attach a file, load an extension or run more than one
statement is refused whole. As in a config file, a query of an inline pack that this
host cannot run (a table it lacks) is skipped, not refused.
"""

from __future__ import annotations

from ..config.sections import Config
from ..errors import ConfigError, QueryError
from ..sql.readonly import ReadOnlyConnection
from .check import check, other_sql, prepare_query


def check_fragment(ro: ReadOnlyConnection, fragment: Config, local: Config) -> Config:
    """``fragment`` without its pack queries that cannot run here; ConfigError naming what cannot run."""
    as_config = local.replace(path=fragment.path, text=fragment.text, raw=fragment.raw, queries=fragment.queries)
    report = check(as_config)
    if report.errors:
        raise ConfigError("; ".join(report.errors))
    for where, sql in other_sql(fragment):
        try:
            prepare_query(ro, sql)
        except QueryError as err:
            raise ConfigError(f"{fragment.path}: {'.'.join(where)}: {err}") from None
    if not report.skipped:
        return fragment
    return fragment.replace(queries={n: q for n, q in fragment.queries.items() if n not in report.skipped})
