"""The daemon's control socket: read-only SQL against the live rings and self tables.

Protocol (also in docs/control-protocol.md): a Unix stream socket, mode 0600;
UTF-8 JSON, one object per line each way. A client may send several requests
on one connection; replies come in the order of the requests.

Request::

    {"id": 7, "sql": "SELECT ...", "params": [1, "x"] | {"name": 1},
     "deadline": 2.5, "max_rows": 100, "max_reply_bytes": 65536, "truncate_at_bytes": false}

Only ``sql`` is required. ``id`` is any JSON value and is echoed back (null
if absent). ``params`` bind ``?``/``?NNN`` (a list) or ``:name`` (an object);
values are strings, numbers, booleans (bound as 1/0) or null. ``deadline``
(seconds), ``max_rows`` and ``max_reply_bytes`` may lower the daemon's [control]
limits, never raise them; ``truncate_at_bytes`` answers the rows that fit the
byte cap (``"truncated": true, "cut": "bytes"``) instead of an error.

Reply, success::

    {"id": 7, "columns": ["pid", "path"], "rows": [[1, "/sbin/init"]], "truncated": false}

``truncated`` is true when the row cap cut the result short. ``"follow": true``
starts a live query and ``"follow": {"table": eid}`` continues it: the reply
then carries the next floors in ``"follow"`` (streamq.sql.readonly.follow); with `query
--follow`'s streaming options (``"window": "tumble 1m"``, ...) it starts a stream whose
state the daemon keeps for the connection (streamq.daemon.controlstreams). BLOBs are sent as
lowercase hex strings, NaN as null. Reply, failure (nothing else is sent)::

    {"id": 7, "error": "not allowed on the read-only connection: ATTACH"}

plus ``"offset"`` (a character index into the SQL) when SQLite located the mistake.

Every request runs on a read-only connection (streamq.sql.readonly) on the daemon's
SQL thread, one at a time, sharing that thread with the continuous queries. A
request line over 1 MiB, or a client past the connection limit, gets an error
reply and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from typing import Any

from ..client import default_path
from ..errors import QueryError, StreamqError
from ..sql.readonly import Limits, ReadOnlyConnection
from .controlstreams import ConnectionStreams, check_plain_follow, wants_stream
from .handle import DaemonServices

log = logging.getLogger("streamq.daemon.control")
MAX_LINE = 1024 * 1024
MAX_CLIENTS = 64


class ControlError(StreamqError):
    """The control socket cannot be opened (path, permissions, another daemon)."""


async def start_control(daemon: DaemonServices) -> ControlServer | None:
    """The daemon's control server, listening; None if disabled or it could not open (logged).

    A daemon whose control socket fails keeps running its queries: the socket
    is for people and tools looking in, not part of the daemon's job.
    """
    options = daemon.config.control
    if not options.enabled:
        return None
    limits = Limits(options.max_rows, options.deadline, options.max_reply_bytes)
    server = ControlServer(daemon, options.path or default_path(), limits, idle_timeout=options.idle_timeout)
    try:
        await server.start()
    except ControlError as err:
        log.error("control socket disabled: %s", err)
        return None
    log.info("control socket at %s", server.path)
    return server


class ControlServer:
    def __init__(self, daemon: DaemonServices, path: str, limits: Limits, *, idle_timeout: float) -> None:
        self.daemon = daemon
        self.path = os.path.abspath(path)
        self.limits = limits
        self.idle_timeout = idle_timeout
        self.requests = 0
        self.errors = 0  # requests answered with an error
        self.refused = 0  # connections turned away: too many clients
        self.idle_closed = 0  # connections closed for sending no full request line in idle_timeout
        self.oversized = 0  # connections closed for a request line over MAX_LINE
        self._server: asyncio.AbstractServer | None = None
        self._ro: ReadOnlyConnection | None = None
        self._inode: tuple[int, int] | None = None
        self._clients: set[asyncio.Task] = set()

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        daemon = self.daemon
        self._ro = await daemon.sql(ReadOnlyConnection.open, rings=daemon.rings, daemon=daemon, limits=self.limits)
        try:
            sock = listen(self.path)
        except ControlError:
            await daemon.sql(self._ro.close)
            raise
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_LINE)

    async def stop(self) -> None:
        """Stop listening and end every request now; the rest of the shutdown must not wait for one."""
        if self._server is not None:
            self._server.close()
        if self._ro is not None:
            self._ro.interrupt()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        with contextlib.suppress(OSError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:  # only our own socket, not a successor's
                os.unlink(self.path)
        if self._ro is not None:
            # Queued, not awaited: the SQL thread may be in a continuous query that only the
            # scheduler's stop interrupts; the daemon closes that thread after both.
            self._closing = asyncio.ensure_future(self.daemon.sql(self._ro.close))
            self._ro = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        streams = ConnectionStreams()  # this connection's streaming follows; gone when it closes
        try:
            if len(self._clients) > MAX_CLIENTS:
                self.refused += 1
                writer.write(_error_line(None, f"too many clients (limit {MAX_CLIENTS}); try again later"))
                await writer.drain()
                return
            while True:
                try:
                    # A whole request line within idle_timeout: a client that holds its slot
                    # idle, or trickles a byte at a time, gives it back.
                    async with asyncio.timeout(self.idle_timeout):
                        line = await reader.readline()
                except TimeoutError:
                    self.idle_closed += 1
                    writer.write(_error_line(None, f"no complete request within {self.idle_timeout:g}s; closing"))
                    await writer.drain()
                    return
                except ValueError:  # over MAX_LINE; the stream cannot resync, so close it
                    self.oversized += 1
                    writer.write(_error_line(None, f"request line over {MAX_LINE} bytes"))
                    await writer.drain()
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                writer.write(await self.daemon.sql(self.handle, line, streams))
                try:
                    async with asyncio.timeout(self.idle_timeout):  # a client that never reads, too
                        await writer.drain()
                except TimeoutError:
                    self.idle_closed += 1
                    return
        except (ConnectionError, OSError):
            pass  # the client went away mid-reply: its loss, not the daemon's
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def handle(self, line: bytes, streams: ConnectionStreams) -> bytes:
        """One request line to one reply line; runs on the SQL thread, never raises."""
        import orjson

        self.requests += 1
        rid = None
        try:
            request = orjson.loads(line)
            if not isinstance(request, dict):
                raise QueryError('a request is a JSON object with at least "sql"')
            rid = request.get("id")
            ro = self._ro  # once: stop() clears it from the event loop's thread
            if ro is None:
                raise QueryError("the daemon is stopping")
            reply = {"id": rid, **self._answer(ro, request, streams)}
            return orjson.dumps(reply, default=_jsonable, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONDecodeError as err:
            message = f"malformed JSON: {err}"
        except QueryError as err:
            self.errors += 1
            return _error_line(rid, str(err), getattr(err, "offset", None))
        except StreamqError as err:
            message = str(err)
        except Exception as err:  # a bug; the daemon answers and goes on
            log.exception("control request failed")
            message = f"{type(err).__name__}: {err}"
        self.errors += 1
        return _error_line(rid, message)

    def _answer(self, ro: ReadOnlyConnection, request: dict, streams: ConnectionStreams) -> dict[str, Any]:
        if "sql" not in request and "stream" in request:
            return streams.step(request)
        sql, params, deadline, max_rows, max_bytes = _parse(request)
        follow = _follow(request)
        if follow is _NOT_FOLLOWING:
            cut_at_bytes = request.get("truncate_at_bytes", False)
            if not isinstance(cut_at_bytes, bool):
                raise QueryError('"truncate_at_bytes" must be true or false')
            result = ro.run(
                sql, params, deadline=deadline, max_rows=max_rows, max_reply_bytes=max_bytes, cut_at_bytes=cut_at_bytes
            )
            reply = {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}
            if result.cut == "bytes":
                reply["cut"] = "bytes"
            return reply
        if params is not None:
            raise QueryError('"follow" takes no "params"')
        if wants_stream(request):
            if follow is not None:
                raise QueryError('streaming options start a stream ("follow": true); step it with {"stream": N}')
            return streams.start(ro, sql, request)
        result, ceilings = ro.follow(sql, follow, deadline=deadline, max_rows=max_rows)
        if follow is None:
            check_plain_follow(ro, sql, sorted(ceilings))
        return {"columns": result.columns, "rows": result.rows, "truncated": result.truncated, "follow": ceilings}


def _parse(request: dict) -> tuple[str, Any, float | None, int | None, int | None]:
    sql = request.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError('"sql" must be a non-empty string')
    params = request.get("params")
    if isinstance(params, list):
        params = [_scalar(v) for v in params]
    elif isinstance(params, dict):
        params = {k: _scalar(v) for k, v in params.items()}
    elif params is not None:
        raise QueryError('"params" must be a list or an object')
    deadline = request.get("deadline")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or deadline <= 0):
        raise QueryError('"deadline" must be a number of seconds above zero')
    max_rows = request.get("max_rows")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise QueryError('"max_rows" must be a positive integer')
    max_bytes = request.get("max_reply_bytes")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise QueryError('"max_reply_bytes" must be a positive integer')
    return sql, params, deadline, max_rows, max_bytes


_NOT_FOLLOWING: Any = object()


def _follow(request: dict) -> Any:
    """``"follow": true`` starts a live query (None: no floors yet); an object of floors continues one."""
    follow = request.get("follow", _NOT_FOLLOWING)
    if follow is _NOT_FOLLOWING or follow is False:
        return _NOT_FOLLOWING
    if follow is True:
        return None
    if isinstance(follow, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in follow.values()
    ):
        return follow
    raise QueryError('"follow" must be true or an object of event table floors like {"process_events": 120}')


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise QueryError("a parameter must be a string, a number, a boolean or null")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot send a {type(value).__name__}")


def _error_line(rid: Any, message: str, offset: int | None = None) -> bytes:
    import orjson

    reply: dict[str, Any] = {"id": rid, "error": " ".join(message.split())}
    if offset is not None:
        reply["offset"] = offset  # where in the SQL text SQLite found the mistake
    return orjson.dumps(reply, option=orjson.OPT_APPEND_NEWLINE)


# -- the socket file ---------------------------------------------------------------------------


def listen(path: str) -> socket.socket:
    """A listening socket at ``path``, mode 0600, in a directory only trusted users can write."""
    _check_dir(os.path.dirname(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlError(f"{path} exists and is not a socket; not removing it")
        if _in_use(path):
            raise ControlError(f"another streamq daemon answers on {path}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale: its daemon is gone
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)  # EADDRINUSE if another daemon got there since
        # Permissions are checked at connect(), and connect() is refused until listen(),
        # so tightening the mode before listening leaves no window.
        os.chmod(path, 0o600)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ControlError(f"cannot listen on {path}: {err.strerror or err}") from None
    sock.setblocking(False)
    return sock


def _check_dir(parent: str) -> None:
    try:
        os.mkdir(parent, 0o700)
        os.chmod(parent, 0o700)  # the umask may have taken more, never less
    except FileExistsError:
        pass
    except FileNotFoundError:
        try:
            os.makedirs(parent, 0o700)
        except OSError as err:
            raise ControlError(f"cannot create {parent}: {err.strerror or err}") from None
    except OSError as err:
        raise ControlError(f"cannot create {parent}: {err.strerror or err}") from None
    st = os.stat(parent)
    if not stat.S_ISDIR(st.st_mode):
        raise ControlError(f"{parent} is not a directory")
    # Whoever can write the directory can swap the socket for their own.
    if st.st_uid not in (0, os.geteuid()):
        raise ControlError(f"{parent} belongs to uid {st.st_uid}, not to this user")
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise ControlError(f"{parent} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})")


def _in_use(path: str) -> bool:
    """False only for a stale socket: connection refused, nobody listens (or it vanished)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:  # permission denied, timeout: someone else's, leave it alone
        return True
    finally:
        probe.close()
    return True
