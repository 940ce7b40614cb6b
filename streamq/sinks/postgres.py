"""PostgreSQL sink: each result line is one row of a table, keyed by the line's stable id.

* Columns: ``id`` (primary key), ``host``, ``name`` (the query), ``action`` (added,
  removed, snapshot, batch), ``time`` (the run's calendar time, timestamptz),
  ``epoch``, ``counter``, ``columns`` (JSONB: the row; a snapshot's rows; a batch
  line's diffResults) and ``decorations`` (JSONB).
* A send is one statement in one transaction: ``INSERT ... SELECT FROM
  jsonb_array_elements(...) ON CONFLICT (id) DO NOTHING``, the batch's lines as one JSON
  array (a text[] cast to jsonb[] ran at a third of a plain executemany's rows/s). A
  batch sent again after a failure or a kill -9 inserts nothing twice, so the table
  holds each result exactly once.
* The table is created when missing (``create_table``); an existing one must have
  these columns and a unique index on ``id``.
* psycopg 3, asynchronously; a lost connection fails the send and the next send
  connects anew, at Delivery's pace. Fleet-wide history in SQL: docs/sinks.md.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from ..config.options import BOOL, REQUIRED, STRING, OptionError, SinkOptions, option, positive_duration
from .base import Sink, require_module

log = logging.getLogger("streamq.sinks.postgres")

_TABLE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")

CREATE = """
CREATE TABLE IF NOT EXISTS {table} (
    id text PRIMARY KEY,
    host text NOT NULL,
    name text NOT NULL,
    action text NOT NULL,
    time timestamptz NOT NULL,
    epoch bigint NOT NULL,
    counter bigint NOT NULL,
    columns jsonb NOT NULL,
    decorations jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS {index}_by_name_time ON {table} (name, time);
CREATE INDEX IF NOT EXISTS {index}_by_host_time ON {table} (host, time)
"""

# The lines go in as one JSONB array and the server takes the fields apart, the id included
# (every line the daemon writes has one): no JSON work in Python, no array-literal quoting.
INSERT = """
INSERT INTO {table} (id, host, name, action, time, epoch, counter, columns, decorations)
SELECT line->>'id', line->>'hostIdentifier', line->>'name',
       coalesce(line->>'action', CASE WHEN line ? 'snapshot' THEN 'snapshot' ELSE 'batch' END),
       to_timestamp((line->>'unixTime')::bigint), (line->>'epoch')::bigint, (line->>'counter')::bigint,
       coalesce(line->'columns', line->'snapshot', line->'diffResults', '{{}}'), coalesce(line->'decorations', '{{}}')
FROM jsonb_array_elements(%s::jsonb) AS batch(line)
ON CONFLICT (id) DO NOTHING
"""


class PostgresUnavailable(ConnectionError):
    """The server cannot be reached or the insert failed; the rows stay in the outbox."""


@dataclass(frozen=True)
class PostgresSinkOptions(SinkOptions):
    dsn: str = option(REQUIRED, STRING, doc="libpq connection string or URI: postgresql://user@host/db")
    table: str = option("streamq_results", STRING, doc="Table of result rows (schema.table allowed).")
    create_table: bool = option(True, BOOL, doc="Create the table and its indexes when missing.")
    connect_timeout: float = option(5.0, positive_duration)


class PostgresSink(Sink):
    type = "postgres"
    Options = PostgresSinkOptions
    coalesce = True  # one statement carries several runs under load

    @classmethod
    def validate(cls, options: PostgresSinkOptions) -> None:
        require_module("psycopg", "psycopg", "postgres")
        if not _TABLE.match(options.table):
            raise OptionError("table", "expected a lower-case table name, optionally schema.table")
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(options.dsn)
        except Exception as err:  # psycopg.ProgrammingError: the message names what is wrong
            raise OptionError("dsn", f"not a libpq connection string: {err}") from None

    async def start(self) -> None:
        self._conn: Any = None
        table = self.options.table
        self._insert = INSERT.format(table=table)
        self._create = CREATE.format(table=table, index=table.replace(".", "_"))

    async def _connection(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(
                self.options.dsn,
                connect_timeout=max(1, int(self.options.connect_timeout)),
                application_name=f"streamq-{self.host}",
            )
            if self.options.create_table:
                async with conn.transaction():
                    for statement in self._create.split(";"):
                        await conn.execute(statement)
        except psycopg.Error as err:
            raise PostgresUnavailable(_one_line(err)) from err
        self._conn = conn
        log.info("postgres sink %s: connected, writing to %s", self.name, self.options.table)
        return conn

    async def send(self, query: str, lines: list[bytes]) -> None:
        import psycopg

        batch = (b"[" + b",".join(lines) + b"]").decode()
        conn = await self._connection()
        try:
            async with conn.transaction():
                await conn.execute(self._insert, [batch])
        except psycopg.Error as err:
            if conn.closed or isinstance(err, psycopg.OperationalError):
                await self._drop()
            raise PostgresUnavailable(_one_line(err)) from err

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        await self._drop()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
