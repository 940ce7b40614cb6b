"""The daemon's persisted state, in one embedded SQLite file (APSW).

* ``queries``: per query, the diff base (last result), epoch, counter and the
  stream cursors of its event tables;
* ``outbox``: result batches waiting for a sink, in order. A query's new state
  and its outgoing lines are written in one transaction, so after a crash
  (kill -9) either both happened or neither: nothing accepted is lost and no
  run is reported twice. Sinks delete a batch only once it was delivered; for
  MQTT this is also the disk spool that carries results through a broker outage.

One StateStore belongs to one thread (the daemon's SQL thread).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import apsw
import orjson

from ..sinks.delivery import Batch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    name TEXT PRIMARY KEY,
    sql_hash TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    base BLOB,
    cursors TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    query TEXT NOT NULL,
    rows INTEGER NOT NULL,
    created REAL NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_sink ON outbox (sink, id);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def sql_hash(sql: str) -> str:
    return hashlib.sha1(" ".join(sql.split()).encode()).hexdigest()


@dataclass
class QueryState:
    """What a query remembers between runs (and restarts)."""

    sql_hash: str
    epoch: int = 0
    counter: int = 0
    base: list[bytes] | None = None  # encoded rows of the last result; None before the first run
    cursors: dict[str, list] = field(default_factory=dict)  # event table -> [ring generation, eid]


class StateStore:
    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.path = path
        self.db = apsw.Connection(path)
        self.db.set_busy_timeout(5000)
        # WAL + NORMAL: a committed transaction survives the process being killed.
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- key/value ----------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        for (value,) in self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)):
            return value
        return None

    def put(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def instance_uuid(self) -> str:
        """A uuid for this state file, created once: osquery's instance_id."""
        found = self.get("instance_id")
        if found is None:
            found = str(uuid.uuid4())
            self.put("instance_id", found)
        return found

    # -- queries ------------------------------------------------------------------------------

    def load(self, name: str, sql: str, epoch: int) -> QueryState:
        """The state of query ``name``; fresh when its SQL or the epoch changed."""
        digest = sql_hash(sql)
        for row_hash, row_epoch, counter, base, cursors in self.db.execute(
            "SELECT sql_hash, epoch, counter, base, cursors FROM queries WHERE name = ?", (name,)
        ):
            if row_hash == digest and row_epoch == epoch:
                rows = None if base is None else _decode_base(base)
                return QueryState(digest, epoch, counter, rows, orjson.loads(cursors))
        return QueryState(digest, epoch)

    def commit(self, name: str, state: QueryState, batches: Iterable[tuple[str, int, list[bytes]]]) -> None:
        """Save ``state`` and queue ``batches`` (sink, row count, lines) in one transaction."""
        base = None if state.base is None else _encode_base(state.base)
        now = time.time()
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO queries (name, sql_hash, epoch, counter, base, cursors) VALUES (?,?,?,?,?,?)",
                (name, state.sql_hash, state.epoch, state.counter, base, orjson.dumps(state.cursors).decode()),
            )
            for sink, rows, lines in batches:
                if lines:
                    self.db.execute(
                        "INSERT INTO outbox (sink, query, rows, created, payload) VALUES (?,?,?,?,?)",
                        (sink, name, rows, now, b"\n".join(lines)),
                    )

    def forget(self, names: Iterable[str]) -> None:
        with self.db:
            for name in names:
                self.db.execute("DELETE FROM queries WHERE name = ?", (name,))

    # -- outbox -------------------------------------------------------------------------------

    def pending(self, sink: str, limit: int = 100) -> list[Batch]:
        return [
            Batch(id, sink, query, rows, bytes(payload).split(b"\n"), created=created)
            for id, query, rows, payload, created in self.db.execute(
                "SELECT id, query, rows, payload, created FROM outbox WHERE sink = ? ORDER BY id LIMIT ?",
                (sink, limit),
            )
        ]

    def delivered(self, ids: Iterable[int]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def backlog(self, sink: str) -> tuple[int, int]:
        """(batches, rows) waiting for ``sink``."""
        for count, rows in self.db.execute(
            "SELECT count(*), coalesce(sum(rows), 0) FROM outbox WHERE sink = ?", (sink,)
        ):
            return count, rows
        return 0, 0

    def drop_oldest(self, sink: str, keep_rows: int) -> int:
        """Trim ``sink``'s backlog to about ``keep_rows`` rows, oldest first; return rows dropped."""
        _, rows = self.backlog(sink)
        dropped = 0
        if rows <= keep_rows:
            return 0
        with self.db:
            for id, n in list(self.db.execute("SELECT id, rows FROM outbox WHERE sink = ? ORDER BY id", (sink,))):
                if rows - dropped <= keep_rows:
                    break
                self.db.execute("DELETE FROM outbox WHERE id = ?", (id,))
                dropped += n
        return dropped


def _encode_base(rows: list[bytes]) -> bytes:
    return b"\n".join(rows)


def _decode_base(blob: bytes) -> list[bytes]:
    data = bytes(blob)
    return data.split(b"\n") if data else []
