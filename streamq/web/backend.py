"""Where the console's SQL runs: in the daemon itself, or in a daemon reached over its control socket.

Both run every statement on a read-only connection (streamq.sql.readonly) under the
same limits as the control socket: the authorizer, a deadline and a row cap; the
console adds its own byte cap when it writes the reply. A live query is a series of
:meth:`follow` steps, each reading the events after the floors the last one returned.
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

Floors = dict[str, int]
REMOTE_POLL = 0.2  # seconds between live steps over the control socket (it has no push)


class Waiter(Protocol):
    async def wait(self, timeout: float) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    description: str

    async def query(self, sql: str, *, max_rows: int | None = None, deadline: float | None = None) -> Result: ...

    async def follow(self, sql: str, floors: Floors | None) -> tuple[Result, Floors]: ...

    def waiter(self, tables: list[str]) -> Waiter: ...

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
        return await self.daemon.sql(ro.run, sql, None, max_rows=max_rows, deadline=deadline)

    async def follow(self, sql: str, floors: Floors | None) -> tuple[Result, Floors]:
        ro = self._conn()
        return await self.daemon.sql(ro.follow, sql, floors)

    def waiter(self, tables: list[str]) -> Waiter:
        return _RingWaiter(RingWaker(self.daemon.rings.ring(t) for t in tables))

    async def close(self) -> None:
        ro, self._ro = self._ro, None
        if ro is not None:
            ro.interrupt()
            # Queued, not awaited: the daemon closes its SQL thread after every server stopped.
            self._closing = asyncio.ensure_future(self.daemon.sql(ro.close))


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
    """A daemon elsewhere on the host, through its control socket (docs/control-protocol.md)."""

    def __init__(self, path: str, limits: Limits, *, max_reply_bytes: int) -> None:
        self.path = path
        self.limits = limits
        self.description = f"daemon at {path}"
        # A reply line holds the rows; the daemon's own cap bounds it, this bounds what we read.
        self._line_limit = max_reply_bytes + 1024 * 1024

    async def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        import orjson

        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=self._line_limit)
        except OSError as err:
            raise DaemonUnreachable(f"no streamq daemon answers at {self.path}: {err.strerror or err}") from None
        try:
            writer.write(orjson.dumps(body) + b"\n")
            await writer.drain()
            line = await reader.readline()
        except ValueError:
            raise QueryError(f"the reply is over {self._line_limit} bytes") from None
        except OSError as err:
            raise DaemonUnreachable(f"lost the daemon at {self.path}: {err.strerror or err}") from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if not line.endswith(b"\n"):
            raise DaemonUnreachable(f"the daemon at {self.path} closed the connection without a reply")
        reply = orjson.loads(line)
        if "error" in reply:
            raise QueryError(reply["error"], offset=reply.get("offset"))
        return reply

    async def query(self, sql: str, *, max_rows: int | None = None, deadline: float | None = None) -> Result:
        body = {
            "sql": sql,
            "max_rows": _cap(max_rows, self.limits.max_rows),
            "deadline": _cap(deadline, self.limits.deadline),
        }
        reply = await self.request(body)
        return Result(reply["columns"], reply["rows"], bool(reply.get("truncated")))

    async def follow(self, sql: str, floors: Floors | None) -> tuple[Result, Floors]:
        body = {"sql": sql, "follow": floors if floors is not None else True, "max_rows": self.limits.max_rows}
        reply = await self.request(body)
        result = Result(reply["columns"], reply["rows"], bool(reply.get("truncated")))
        return result, {str(k): int(v) for k, v in (reply.get("follow") or {}).items()}

    def waiter(self, tables: list[str]) -> Waiter:
        return _PollWaiter()

    async def close(self) -> None:
        pass


def _cap(asked: float | int | None, most: float | int) -> Any:
    return most if asked is None else min(asked, most)
