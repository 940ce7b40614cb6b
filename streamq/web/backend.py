"""Where the console's SQL runs: in the daemon itself, or in a daemon reached over its control socket.

Both run every statement on a read-only connection (streamq.sql.readonly) under the
same mechanism as the control socket: the authorizer, a deadline, a row cap and a byte
cap counted while the rows are read (the console asks for the rows that fit rather
than an error). A live query is a :class:`~streamq.stream.follow.FollowedQuery`, the
engine `query --follow` runs: in the daemon, on its SQL thread; over the socket, a
stream the daemon keeps for one connection, stepped every REMOTE_POLL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Protocol

from ..daemon.handle import DaemonServices
from ..errors import QueryError, StreamqError
from ..ring import RingWaker
from ..sql.readonly import Limits, ReadOnlyConnection, Result
from ..stream.spec import StreamSpec

REMOTE_POLL = 0.2  # seconds between live steps over the control socket (it has no push)
Batch = dict[str, Any]  # streamq.stream.follow.batch: rows, kinds, keys, suppressed, late, ...


class Waiter(Protocol):
    async def wait(self, timeout: float) -> None: ...

    def close(self) -> None: ...


class LiveFeed(Protocol):
    """One live query's steps; ``finish`` ends its input (open windows come out, final)."""

    columns: list[str]
    tables: list[str]

    async def step(self) -> Batch: ...

    async def finish(self) -> Batch: ...

    def waiter(self) -> Waiter: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    description: str

    async def query(self, sql: str, *, max_rows: int | None = None, deadline: float | None = None) -> Result: ...

    async def open_live(self, sql: str, spec: StreamSpec, options: Mapping[str, Any]) -> LiveFeed: ...

    async def close(self) -> None: ...


class DaemonBackend:
    """The daemon's own read-only connection, on its SQL thread (shared with its continuous queries)."""

    def __init__(self, daemon: DaemonServices, limits: Limits) -> None:
        self.daemon = daemon
        self.limits = limits
        self.description = f"daemon {daemon.host} (in process)"
        self._ro: ReadOnlyConnection | None = None

    async def open(self) -> None:
        d = self.daemon
        self._ro = await d.sql(ReadOnlyConnection.open, rings=d.rings, daemon=d, limits=self.limits)

    def _conn(self) -> ReadOnlyConnection:
        if self._ro is None:
            raise QueryError("the daemon is stopping")
        return self._ro

    async def query(self, sql: str, *, max_rows: int | None = None, deadline: float | None = None) -> Result:
        ro = self._conn()
        return await self.daemon.sql(ro.run, sql, None, max_rows=max_rows, deadline=deadline, cut_at_bytes=True)

    async def open_live(self, sql: str, spec: StreamSpec, options: Mapping[str, Any]) -> LiveFeed:
        from ..stream.follow import FollowedQuery

        query = await self.daemon.sql(FollowedQuery.readonly, self._conn(), sql, spec)
        return _DaemonFeed(self.daemon, query)

    async def close(self) -> None:
        ro, self._ro = self._ro, None
        if ro is not None:
            ro.interrupt()
            # Queued, not awaited: the daemon closes its SQL thread after every server stopped.
            self._closing = asyncio.ensure_future(self.daemon.sql(ro.close))


class _DaemonFeed:
    def __init__(self, daemon: DaemonServices, query: Any) -> None:
        self.daemon, self.query = daemon, query
        self.columns, self.tables = query.columns, query.tables

    async def step(self) -> Batch:
        return await self._batch(self.query.step)

    async def finish(self) -> Batch:
        return await self._batch(self.query.finish)

    async def _batch(self, stage: Any) -> Batch:
        from ..stream.follow import batch

        query = self.query
        return await self.daemon.sql(lambda: batch(query, stage()))

    def waiter(self) -> Waiter:
        return _RingWaiter(RingWaker(self.daemon.rings.ring(t) for t in self.tables))

    async def close(self) -> None:
        pass


class _RingWaiter:
    def __init__(self, waker: RingWaker) -> None:
        self.waker = waker

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.waker.wait(), timeout)
        self.waker.clear()

    def close(self) -> None:
        self.waker.close()


class _PollWaiter:
    async def wait(self, timeout: float) -> None:
        await asyncio.sleep(min(timeout, REMOTE_POLL))

    def close(self) -> None:
        pass


class DaemonUnreachable(StreamqError):
    """The control socket of the daemon the console serves does not answer."""


class RemoteBackend:
    """A daemon elsewhere on the host, through its control socket (docs/control-protocol.md).

    The console's limits go with every request, where they may lower the daemon's own
    ([control] max_rows, deadline, max_reply_bytes), never raise them."""

    def __init__(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.description = f"daemon at {path}"
        # reply_size counts a row's JSON about: allow for escapes (a quote takes two bytes) and the envelope.
        self._line_limit = 2 * limits.max_reply_bytes + 1024 * 1024

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_unix_connection(self.path, limit=self._line_limit)
        except OSError as err:
            from ..client import connect_error

            raise DaemonUnreachable(connect_error(self.path, err)) from None

    async def exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One request line and its reply line on an open connection; an error reply raises QueryError."""
        import orjson

        try:
            writer.write(orjson.dumps(body) + b"\n")
            await writer.drain()
            line = await reader.readline()
        except ValueError:
            raise QueryError(f"the reply is over {self._line_limit} bytes") from None
        except OSError as err:
            raise DaemonUnreachable(f"lost the daemon at {self.path}: {err.strerror or err}") from None
        if not line.endswith(b"\n"):
            raise DaemonUnreachable(f"the daemon at {self.path} closed the connection without a reply")
        reply = orjson.loads(line)
        if "error" in reply:
            raise QueryError(reply["error"], offset=reply.get("offset"))
        return reply

    async def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        reader, writer = await self._connect()
        try:
            return await self.exchange(reader, writer, body)
        finally:
            await _close(writer)

    async def query(self, sql: str, *, max_rows: int | None = None, deadline: float | None = None) -> Result:
        body = {
            "sql": sql,
            "max_rows": _cap(max_rows, self.limits.max_rows),
            "deadline": _cap(deadline, self.limits.deadline),
            "max_reply_bytes": self.limits.max_reply_bytes,
            "truncate_at_bytes": True,
        }
        reply = await self.request(body)
        truncated = bool(reply.get("truncated"))
        return Result(reply["columns"], reply["rows"], truncated, reply.get("cut") or ("rows" if truncated else None))

    async def open_live(self, sql: str, spec: StreamSpec, options: Mapping[str, Any]) -> LiveFeed:
        reader, writer = await self._connect()
        try:
            first = await self.exchange(reader, writer, {"sql": sql, "follow": True, "stream": True, **options})
        except BaseException:
            await _close(writer)
            raise
        return _RemoteFeed(self, reader, writer, first)

    async def close(self) -> None:
        pass


class _RemoteFeed:
    """A stream the daemon keeps for this connection: stepped, ended, gone with the connection."""

    def __init__(self, backend: RemoteBackend, reader: Any, writer: Any, first: dict[str, Any]) -> None:
        self.backend, self.reader, self.writer = backend, reader, writer
        self.number = first["stream"]
        self.columns = first["columns"]
        self.tables: list[str] = first["tables"]

    async def step(self) -> Batch:
        return await self.backend.exchange(self.reader, self.writer, {"stream": self.number})

    async def finish(self) -> Batch:
        return await self.backend.exchange(self.reader, self.writer, {"stream": self.number, "end": True})

    def waiter(self) -> Waiter:
        return _PollWaiter()

    async def close(self) -> None:
        await _close(self.writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def _cap(asked: float | int | None, most: float | int) -> Any:
    return most if asked is None else min(asked, most)
