"""What the sink tests share: result lines, a sink fed through a real outbox, and a daemon to kill -9.

``Outbox`` runs the daemon's own delivery path in-process (StateStore + SqlThread +
Delivery) around any sink, so a test commits runs the way the scheduler does and
watches them arrive. ``FeedDaemon`` runs `streamq run` as a process whose stream
query turns each record appended to a JSON-lines file into one result row.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from conftest import retry, until  # noqa: F401  (until: the sink tests import it from here)
from streamq.daemon.state import StateStore
from streamq.sinks.delivery import Delivery
from streamq.sql.thread import SqlThread


def unique_name(prefix: str = "q") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def result_lines(
    query: str, counter: int, rows: list[dict], *, host: str = "h1", action: str = "added", start: int = 0
) -> list[bytes]:
    """One run's lines in osquery's event format with their ids, as the scheduler writes them
    (``start``: the index of the first row within its run)."""
    header = {
        "name": query,
        "hostIdentifier": host,
        "calendarTime": "Mon Jan  1 00:00:00 2024 UTC",
        "unixTime": 1704067200,
        "epoch": 0,
        "counter": counter,
        "numerics": True,
        "decorations": {},
    }
    return [
        orjson.dumps({**header, "columns": row, "action": action, "id": f"{host}:{query}:0:{counter}:{index}"})
        for index, row in enumerate(rows, start)
    ]


class Outbox:
    """``async with Outbox(path, sink) as box``: the sink started, fed by Delivery from a real state store."""

    def __init__(self, path: Path, sink) -> None:
        self.path, self.sink = path, sink
        self.counter = 0

    async def __aenter__(self) -> Outbox:
        self.store = StateStore(str(self.path / f"state-{uuid.uuid4().hex[:6]}.db"))
        self.sql = SqlThread()
        await self.sink.start()
        self.delivery = Delivery(self.sink, self.store, self.sql)
        self.task = asyncio.create_task(self.delivery.run())
        return self

    async def commit(self, query: str, lines: list[bytes]) -> None:
        """Queue one run's lines for the sink, as the scheduler does after a run."""
        state = await self.sql(self.store.load, query, "select 1", 0)
        await self.sql(self.store.commit, query, state, [(self.sink.name, len(lines), lines)])
        self.delivery.wake.set()

    async def backlog(self) -> tuple[int, int]:
        return await self.sql(self.store.backlog, self.sink.name)

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.sink.close()
        await self.sql(self.store.close)
        self.sql.close()


FEED_CONFIG = """
[host]
identifier = "{host}"
[state]
path = "state.db"
[control]
{control}
[sources.jsonl.feed]
path = "feed.jsonl"
poll_interval = "20ms"
columns = {{ n = "INTEGER" }}
[queries.feed]
sql = "SELECT n FROM feed_events"
mode = "stream"
on = ["feed_events"]
[sinks.out]
{sink}
"""


# Eight queries of 5,000 rows each, all in their first (baseline) run: the outbox holds 40,000
# rows at once, and a diff query's next runs add nothing, so a restart sends only what was left.
BIG_QUERIES = "".join(
    f'[queries.big{k}]\nsql = "WITH RECURSIVE c(n) AS (SELECT {k * 5000} UNION ALL SELECT n + 1 FROM c '
    f'WHERE n < {k * 5000 + 4999}) SELECT n FROM c"\ninterval = "1h"\nsinks = ["out"]\n'
    for k in range(8)
)


class FeedDaemon:
    """`streamq run` in ``cwd`` whose query `feed` sends one row per record appended to feed.jsonl."""

    def __init__(
        self, cwd: Path, sink_toml: str, *, host: str = "feedhost", extra: str = "", control: str | None = None
    ) -> None:
        self.cwd = cwd
        self.host = host
        control_toml = f'path = "{control}"' if control else "enabled = false"
        (cwd / "streamq.toml").write_text(FEED_CONFIG.format(host=host, sink=sink_toml, control=control_toml) + extra)
        (cwd / "feed.jsonl").write_text("")
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self, *args: str, env: dict | None = None, wait: bool = True) -> FeedDaemon:
        """Start it (``args`` after ``run -c streamq.toml``); with ``wait``, until it logs that it runs."""
        self.runs += 1
        self.stderr_path = self.cwd / f"stderr.{self.runs}.txt"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamq", "run", "-c", "streamq.toml", *args],
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        if wait:
            assert retry(lambda: "running" in self.stderr() or self.proc.poll() is not None, timeout=20), self.stderr()
            assert self.proc.poll() is None, self.stderr()
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def feed(self, start: int, count: int) -> None:
        with open(self.cwd / "feed.jsonl", "a") as f:
            f.write("".join(json.dumps({"n": n}) + "\n" for n in range(start, start + count)))

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.kill9()
