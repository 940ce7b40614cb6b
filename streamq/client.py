"""A client for a running daemon's control socket (the protocol: docs/control-protocol.md).

>>> import streamq
>>> with streamq.Client("/run/streamq/control.sock") as daemon:
...     daemon.query("SELECT pid, path FROM process_events WHERE action = ?", ["exec"])

Blocking and dependency-free on purpose: ``streamq query --connect`` should cost a
socket round trip, not an event loop. One client holds one connection and sends
one request at a time; use one client per thread.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from .errors import QueryError, StreamqError

Params = Sequence[Any] | Mapping[str, Any] | None


class DaemonUnavailable(StreamqError):
    """No daemon answers on the control socket (missing, stale, not ours, or it went away)."""


class Reply(NamedTuple):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool  # the daemon's row cap cut the result short


def default_path() -> str:
    """Where the daemon listens when [control] path is not set, and where a client looks.

    root: /run/streamq/control.sock (a root shell's XDG_RUNTIME_DIR is not the service's);
    other users: $XDG_RUNTIME_DIR/streamq/control.sock, else /tmp/streamq-<uid>/control.sock.
    """
    if os.geteuid() == 0:
        return "/run/streamq/control.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "streamq", "control.sock")
    return f"/tmp/streamq-{os.getuid()}/control.sock"


class Client:
    """A connection to a daemon's control socket; connects on first use, reconnects after a failure."""

    def __init__(
        self,
        path: str | None = None,
        *,
        timeout: float | None = 120.0,
        on_truncated: Callable[[Reply], None] | None = None,
    ) -> None:
        self.path = path or default_path()
        self.timeout = timeout
        self.on_truncated = on_truncated  # called by execute() when the row cap cut a result
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self._ids = itertools.count(1)

    def connect(self) -> Client:
        """Open the connection now (the first request does it otherwise); DaemonUnavailable if none answers."""
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as err:
            sock.close()
            raise DaemonUnavailable(connect_error(self.path, err)) from None
        self._sock, self._reader = sock, sock.makefile("rb")
        return self

    def request(
        self, sql: str, params: Params = None, *, deadline: float | None = None, max_rows: int | None = None
    ) -> Reply:
        """Run ``sql`` on the daemon; QueryError with the daemon's message if it refused or failed."""
        import orjson

        message: dict[str, Any] = {"id": next(self._ids), "sql": sql}
        if params is not None:
            message["params"] = params if isinstance(params, Mapping) else list(params)
        if deadline is not None:
            message["deadline"] = deadline
        if max_rows is not None:
            message["max_rows"] = max_rows
        try:
            line = orjson.dumps(message) + b"\n"
        except TypeError as err:  # params that are not JSON values
            raise QueryError(f"cannot send the request: {err}") from None
        self.connect()
        try:
            self._sock.sendall(line)  # type: ignore[union-attr]
            raw = self._reader.readline()
        except TimeoutError:
            self.close()
            raise DaemonUnavailable(f"no reply from the daemon at {self.path} within {self.timeout:g}s") from None
        except OSError as err:
            self.close()
            raise DaemonUnavailable(
                f"lost the connection to the daemon at {self.path}: {err.strerror or err}"
            ) from None
        if not raw.endswith(b"\n"):
            self.close()
            raise DaemonUnavailable(f"the daemon at {self.path} closed the connection without a reply")
        try:
            reply = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.close()
            raise DaemonUnavailable(f"the daemon at {self.path} sent a malformed reply") from None
        if reply.get("id") != message["id"]:
            self.close()
            raise DaemonUnavailable(f"the daemon at {self.path} answered another request (id {reply.get('id')!r})")
        if "error" in reply:
            raise QueryError(reply["error"])
        return Reply(reply["columns"], reply["rows"], bool(reply.get("truncated")))

    def query(self, sql: str, params: Params = None, **limits: Any) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name, like streamq.Connection.query (request() tells of truncation)."""
        reply = self.request(sql, params, **limits)
        return [dict(zip(reply.columns, row)) for row in reply.rows]

    def execute(self, sql: str, params: Params = None) -> tuple[list[str], Iterator[Sequence[Any]]]:
        """Column names and rows, shaped like streamq.Connection.execute so the shell can use either."""
        reply = self.request(sql, params)
        if reply.truncated and self.on_truncated is not None:
            self.on_truncated(reply)
        return reply.columns, iter(reply.rows)

    def tables(self) -> list[str]:
        from .sql.connection import load_tables

        return sorted(load_tables())  # the daemon runs the same code, so the same tables

    def close(self) -> None:
        if self._sock is not None:
            self._reader.close()
            self._sock.close()
            self._sock = self._reader = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_error(path: str, err: OSError) -> str:
    if isinstance(err, ConnectionRefusedError) and not _is_socket(path):
        return f"{path} is not a socket: --connect takes the daemon's control socket ([control] path)"
    if isinstance(err, FileNotFoundError):
        return f"no streamq daemon at {path}: the socket does not exist (is `streamq run` running?)"
    if isinstance(err, ConnectionRefusedError):
        return f"no streamq daemon answers at {path} (a stale socket: the daemon is gone)"
    if isinstance(err, PermissionError):
        return f"cannot connect to {path}: permission denied (the socket is 0600; run as the daemon's user)"
    return f"cannot connect to {path}: {err.strerror or err}"


def _is_socket(path: str) -> bool:
    import stat

    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return True  # gone or unreadable: the caller's own message says more
