"""The control socket's streaming follow: a followed query whose windows, first-seen keys and
rate limit the daemon keeps for the connection that started it (docs/control-protocol.md).

- Start: a ``follow`` request with any of `query --follow`'s streaming options, in its syntax
  (``{"sql": ..., "follow": true, "window": "tumble 1m", "emit": "changes"}``), or with
  ``"stream": true`` and none; the reply carries ``"stream": N``.
- Step: ``{"stream": N}``: the rows the events since the last step made, with their kinds.
- End: ``{"stream": N, "end": true}``: open windows emitted, final, and the stream forgotten.

A stream lives as long as its connection: when the client goes, its state goes too (memory
is bounded by MAX_STREAMS per connection times the control socket's client limit, each
stream's windows by the ring's capacity). Everything runs on the read-only connection, on
the daemon's SQL thread, under the [control] limits.
"""

from __future__ import annotations

from typing import Any

from ..errors import QueryError
from ..sql.readonly import ReadOnlyConnection
from ..stream.follow import FollowedQuery, batch, check_follow
from ..stream.spec import FOLLOW_OPTIONS, StreamSpec, follow_spec

MAX_STREAMS = 4  # per connection


def wants_stream(request: dict) -> bool:
    """Does this follow request start a stream (rather than a follow the client steps by floors)?"""
    return request.get("stream") is True or any(request.get(name) is not None for name in FOLLOW_OPTIONS)


def check_plain_follow(ro: ReadOnlyConnection, sql: str, tables: list[str]) -> None:
    """A follow without options must not aggregate either: per-batch numbers would depend on the polling."""
    check_follow(ro.conn.apsw, sql, tables, StreamSpec())


class ConnectionStreams:
    """The streams one control connection started, by number."""

    def __init__(self) -> None:
        self.streams: dict[int, FollowedQuery] = {}
        self._next = 1

    def start(self, ro: ReadOnlyConnection, sql: str, request: dict) -> dict[str, Any]:
        try:
            spec = follow_spec({name: request.get(name) for name in FOLLOW_OPTIONS})
        except ValueError as err:
            raise QueryError(str(err)) from None
        if len(self.streams) >= MAX_STREAMS:
            raise QueryError(f"at most {MAX_STREAMS} streams per connection: end one first")
        query = FollowedQuery.readonly(ro, sql, spec)
        number, self._next = self._next, self._next + 1
        self.streams[number] = query
        return {**batch(query, []), "stream": number, "tables": query.tables}

    def step(self, request: dict) -> dict[str, Any]:
        number = request.get("stream")
        if isinstance(number, bool) or not isinstance(number, int):
            raise QueryError('"stream" must be the number of a stream this connection started (or true, to start one)')
        end = request.get("end", False)
        if not isinstance(end, bool):
            raise QueryError('"end" must be true or false')
        query = self.streams.get(number)
        if query is None:
            raise QueryError(
                f"no stream {number} on this connection (a stream ends with the connection that started it)"
            )
        if end:
            del self.streams[number]
            outs = query.finish()
        else:
            outs = query.step()
        return {**batch(query, outs), "stream": number, "ended": end}
