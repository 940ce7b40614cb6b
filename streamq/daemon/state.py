"""The daemon's persisted state, in one embedded SQLite file (APSW).

* ``queries``: per query, the diff base (last result), epoch, counter, the
  stream cursors of its event tables and its watermark and limit counters;
* ``windows``/``window_rows``/``dedup``: the open windows of windowed queries with
  their rows, and first-seen keys (streamq.daemon.streamstate);
* ``outbox``: result batches waiting for a sink, in order. A query's new state
  and its outgoing lines are written in one transaction, so after a crash
  (kill -9) either both happened or neither: nothing accepted is lost and no
  run is reported twice. Sinks delete a batch only once it was delivered; for
  MQTT this is also the disk spool that carries results through a broker outage.

One StateStore belongs to one thread (the daemon's SQL thread).
"""

from __future__ import annotations

import errno
import fcntl
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
CREATE TABLE IF NOT EXISTS windows (
    query TEXT NOT NULL,
    pane INTEGER NOT NULL,
    start REAL NOT NULL,
    stop REAL NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (query, pane)
);
CREATE TABLE IF NOT EXISTS window_rows (
    query TEXT NOT NULL,
    pane INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    row BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS window_rows_by_pane ON window_rows (query, pane);
CREATE TABLE IF NOT EXISTS dedup (
    query TEXT NOT NULL,
    key BLOB NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (query, key)
);
"""
# Tables a query's streaming state lives in besides its row in `queries`.
_STREAM_TABLES = ("windows", "window_rows", "dedup")


def sql_hash(sql: str) -> str:
    return hashlib.sha1(" ".join(sql.split()).encode()).hexdigest()


@dataclass
class QueryState:
    """What a query remembers between runs (and restarts)."""

    sql_hash: str
    epoch: int = 0
    counter: int = 0
    base: list[bytes] | None = None  # encoded rows of the last result; None before the first run
    cursors: dict[str, list] = field(default_factory=dict)  # event table -> [ring origin, eid]
    stream: dict = field(default_factory=dict)  # watermark, late and limit counters (streamq.stream)
    fresh: bool = True  # no committed state for this SQL and epoch: the first commit clears the old


def _lock_exclusively(path: str) -> int:
    """Hold an flock on ``path`` for as long as the store is open.

    Two daemons on one state file would both deliver the same outbox rows (a webhook batch
    was seen twice). The kernel drops the lock when the holder dies, kill -9 included, so a
    stale lock file never blocks a restart.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise OSError(errno.EBUSY, f"another streamq daemon uses this state file{who}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class StateStore:
    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.path = path
        self._lock = _lock_exclusively(path + ".lock")
        self.db = apsw.Connection(path)
        self.db.set_busy_timeout(5000)
        # WAL + NORMAL: a committed transaction survives the process being killed.
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        # A small disk (the state on a 2 MB tmpfs): checkpoint the WAL every ~400 KB and give the
        # space back after, instead of letting it grow to 4 MB and stay there.
        self.db.execute("PRAGMA wal_autocheckpoint = 100")
        self.db.execute("PRAGMA journal_size_limit = 1048576")
        self.db.execute(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(queries)")}
        if "stream" not in columns:  # a state file from before streaming state
            self.db.execute("ALTER TABLE queries ADD COLUMN stream TEXT NOT NULL DEFAULT '{}'")

    def close(self) -> None:
        self.db.close()
        os.close(self._lock)  # releases the lock

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
        for row_hash, row_epoch, counter, base, cursors, stream in self.db.execute(
            "SELECT sql_hash, epoch, counter, base, cursors, stream FROM queries WHERE name = ?", (name,)
        ):
            if row_hash == digest and row_epoch == epoch:
                rows = None if base is None else _decode_base(base)
                return QueryState(digest, epoch, counter, rows, orjson.loads(cursors), orjson.loads(stream), False)
        return QueryState(digest, epoch)

    def commit(
        self,
        name: str,
        state: QueryState,
        batches: Iterable[tuple[str, int, list[bytes]]],
        changes: Iterable[tuple[str, list[tuple]]] = (),
    ) -> None:
        """Save ``state``, apply ``changes`` (statement, parameter rows) to the streaming state and
        queue ``batches`` (sink, row count, lines), all in one transaction: all of it or none."""
        base = None if state.base is None else _encode_base(state.base)
        now = time.time()
        try:
            self._commit(name, state, base, now, batches, changes)
        except apsw.FullError:
            self._give_back_wal()
            raise

    def _give_back_wal(self) -> None:
        """After a commit the disk refused: fold the WAL into the database and truncate it, so the
        space the failed transaction took is free for the next try (the outbox pages are reused)."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except apsw.Error:
            pass

    def _commit(self, name, state, base, now, batches, changes) -> None:
        with self.db:
            if state.fresh:
                for table in _STREAM_TABLES:
                    self.db.execute(f"DELETE FROM {table} WHERE query = ?", (name,))
            self.db.execute(
                "INSERT OR REPLACE INTO queries (name, sql_hash, epoch, counter, base, cursors, stream) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    name,
                    state.sql_hash,
                    state.epoch,
                    state.counter,
                    base,
                    orjson.dumps(state.cursors).decode(),
                    orjson.dumps(state.stream).decode(),
                ),
            )
            for statement, params in changes:
                self.db.executemany(statement, params)
            for sink, rows, lines in batches:
                if lines:
                    self.db.execute(
                        "INSERT INTO outbox (sink, query, rows, created, payload) VALUES (?,?,?,?,?)",
                        (sink, name, rows, now, b"\n".join(lines)),
                    )

    def load_stream(self, name: str) -> tuple[list[tuple], list[tuple], list[tuple]]:
        """A query's open windows (pane, start, stop, key), their rows (pane, segment, row) in the
        order they were added, and its dedup keys (key, seen)."""
        db = self.db
        panes = list(db.execute("SELECT pane, start, stop, key FROM windows WHERE query = ? ORDER BY pane", (name,)))
        rows = list(db.execute("SELECT pane, segment, row FROM window_rows WHERE query = ? ORDER BY rowid", (name,)))
        keys = list(db.execute("SELECT key, seen FROM dedup WHERE query = ?", (name,)))
        return panes, rows, keys

    def forget(self, names: Iterable[str]) -> None:
        with self.db:
            for name in names:
                self.db.execute("DELETE FROM queries WHERE name = ?", (name,))
                for table in _STREAM_TABLES:
                    self.db.execute(f"DELETE FROM {table} WHERE query = ?", (name,))

    # -- outbox -------------------------------------------------------------------------------

    def pending(self, sink: str, limit: int = 100, max_rows: int = 20_000) -> list[Batch]:
        """The oldest batches waiting for ``sink``: at most ``limit`` batches, and about ``max_rows`` rows."""
        out: list[Batch] = []
        rows_so_far = 0
        for id, query, rows, payload, created in self.db.execute(
            "SELECT id, query, rows, payload, created FROM outbox WHERE sink = ? ORDER BY id LIMIT ?", (sink, limit)
        ):
            if out and rows_so_far + rows > max_rows:
                break
            out.append(Batch(id, sink, query, rows, bytes(payload).split(b"\n"), created=created))
            rows_so_far += rows
        return out

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
