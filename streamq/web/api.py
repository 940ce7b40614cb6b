"""The console's JSON API; every route but /static needs a session (streamq.web.auth).

- ``GET  /api/session``: the CSRF token and what this console serves.
- ``POST /api/query`` ``{"sql": ...}``: columns, rows, truncated (rows or bytes), or the
  error with the position SQLite gives.
- ``POST /api/live`` ``{"sql": ..., "window": ..., ...}``: starts a live query with
  `query --follow`'s streaming options, in its syntax; ``GET /api/live/ID`` is its
  Server-Sent Events stream (``rows``, then one ``end``); ``POST /api/live/ID/end`` ends
  its input (open windows come out, final, then the ``end`` event).
- ``POST /api/fleet`` ``{"sql": ..., "hosts": [...]}``: one JSON line per host as it
  answers, then one line with the hosts that did not.
- ``GET  /api/tables``: every table's spec (the Tables page, the editor's completion).
- ``GET  /api/status``: live streams and sessions now (tests and the page's footer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiohttp import web

from ..config.sections import FleetOptions, WebOptions
from ..errors import ConfigError, QueryError, StreamqError
from .auth import Gate
from .backend import Backend
from .live import KEEPALIVE, LiveHub

log = logging.getLogger("streamq.web")
MAX_BODY = 1024 * 1024  # a request body: SQL text and a few options


class Api:
    def __init__(
        self, backend: Backend, options: WebOptions, gate: Gate, *, fleet: FleetOptions | None, features: dict
    ) -> None:
        self.backend = backend
        self.options = options
        self.gate = gate
        self.fleet = fleet
        self.features = features
        self.hub = LiveHub(backend, options.max_streams)
        self.queries = 0

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/session", self.session),
            web.get("/api/status", self.status),
            web.get("/api/tables", self.tables),
            web.post("/api/query", self.query),
            web.post("/api/live", self.live_open),
            web.get("/api/live/{id}", self.live_events),
            web.post("/api/live/{id}/end", self.live_end),
            web.post("/api/fleet", self.fleet_query),
        ]

    async def session(self, request: web.Request) -> web.Response:
        session = request["session"]
        return _json(
            {
                "csrf": session.csrf,
                "serving": self.backend.description,
                "fleet": self.fleet is not None,
                "limits": {"rows": self.options.max_rows, "bytes": self.options.max_reply_bytes},
                "features": self.features,
            }
        )

    async def status(self, request: web.Request) -> web.Response:
        streams = [{"id": s.id, "sql": s.sql, **s.status()} for s in self.hub.streams.values()]
        return _json({"streams": streams, "sessions": len(self.gate.sessions), "refused": self.gate.refused})

    async def tables(self, request: web.Request) -> web.Response:
        from ..sql.connection import load_tables

        specs = sorted(load_tables().values(), key=lambda t: t.name)
        return _json([_spec(t) for t in specs])

    async def query(self, request: web.Request) -> web.Response:
        body = await _body(request)
        sql = _sql(body)
        max_rows = body.get("max_rows")
        if max_rows is not None and (not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1):
            return _error("max_rows must be a positive integer")
        self.queries += 1
        started = time.monotonic()
        try:
            result = await self.backend.query(sql, max_rows=max_rows or self.options.max_rows)
        except QueryError as err:
            return _query_error(err)
        except StreamqError as err:
            return _error(str(err), status=503)
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        return _rows_reply(result.columns, result.rows, result.cut, elapsed_ms)

    async def live_open(self, request: web.Request) -> web.Response:
        from ..stream.spec import follow_spec

        body = await _body(request)
        sql = _sql(body)
        # The form's fields as `query --follow`'s flags; an empty field is a flag not given.
        options = {k: v for k, v in body.items() if k != "sql" and v is not None and v != ""}
        try:
            spec = follow_spec(options)
        except ValueError as err:
            return _error(str(err))
        try:
            stream = await self.hub.open(request["session"].id, sql, spec, options)
        except QueryError as err:
            return _query_error(err)
        except ConfigError as err:  # the options do not fit the SQL (query --follow's exit 2)
            return _error(str(err))
        except StreamqError as err:
            return _error(str(err), status=503)
        window = spec.window
        return _json(
            {
                "id": stream.id,
                "columns": stream.columns,
                "tables": stream.tables,
                "window": window.text if window else None,
                "session": bool(window and window.session),
                "emit": spec.emit,
            }
        )

    async def live_end(self, request: web.Request) -> web.Response:
        stream = self.hub.get(request.match_info["id"], request["session"].id)
        if stream is None:
            return _error("no such live stream (it ended, or another was opened in its place)", status=404)
        stream.end_input()
        return _json({"ending": True})

    async def live_events(self, request: web.Request) -> web.StreamResponse:
        stream = self.hub.get(request.match_info["id"], request["session"].id)
        if stream is None:
            return _error("no such live stream (it ended, or another was opened in its place)", status=404)
        if stream.connected:
            return _error("this live stream is already being read", status=409)
        stream.connected = True
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        try:
            while True:
                batch = await stream.next_batch(KEEPALIVE)
                if batch:
                    await response.write(_event("rows", {**batch, **stream.status()}))
                elif stream.end_message is not None:
                    await response.write(_event("end", {"message": stream.end_message, **stream.status()}))
                    break
                else:
                    await response.write(b": keepalive\n\n")
        except (ConnectionError, asyncio.CancelledError):
            pass  # the browser left: free its stream
        finally:
            stream.close("the browser disconnected")
        return response

    async def fleet_query(self, request: web.Request) -> web.StreamResponse:
        from ..daemon import fleet_client

        body = await _body(request)
        sql = _sql(body)
        hosts = body.get("hosts") or None
        if hosts is not None and not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)):
            return _error("hosts must be a list of host identifiers")
        if self.fleet is None or not self.fleet.url:
            return _error("no fleet here: the config has no [fleet] section with a url", status=409)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        replies: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(
            fleet_client.query(
                self.fleet.url,
                sql,
                hosts=hosts,
                timeout=float(body.get("timeout") or 5.0),
                key=self.fleet.key_bytes,
                max_rows=self.options.max_rows,
                on_reply=replies.put_nowait,
            )
        )
        try:
            while not (task.done() and replies.empty()):
                getter = asyncio.ensure_future(replies.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    reply = getter.result()
                    await response.write(
                        _line(
                            {
                                "host": reply.host,
                                "columns": reply.columns,
                                "rows": reply.rows,
                                "truncated": reply.truncated,
                                "error": reply.error,
                            }
                        )
                    )
                else:
                    getter.cancel()
            result = task.result()
            silent = sorted((result.statuses.keys() - result.replies.keys()) | set(result.missing))
            await response.write(
                _line(
                    {
                        "done": True,
                        "missing": silent,
                        "statuses": result.statuses,
                        "duplicates": sorted(result.duplicates),
                    }
                )
            )
        except StreamqError as err:
            await response.write(_line({"done": True, "error": str(err)}))
        except ConnectionError:
            task.cancel()
        return response


def _spec(table: Any) -> dict[str, Any]:
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "description": c.description,
            "flags": [f for f in ("index", "required", "hidden", "additional") if getattr(c, f)],
        }
        for c in table.columns
    ]
    return {"name": table.name, "description": table.description, "columns": columns, "examples": list(table.examples)}


async def _body(request: web.Request) -> dict[str, Any]:
    data = await request.content.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(data))
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise web.HTTPBadRequest(text=f"malformed JSON: {err}") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _sql(body: dict[str, Any]) -> str:
    sql = body.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise web.HTTPBadRequest(text='"sql" must be a non-empty string')
    return sql


def _rows_reply(columns: list, rows: list, cut: str | None, elapsed_ms: float) -> web.Response:
    """The rows as JSON (the read-only connection already held them to the row and byte caps);
    ``truncated`` says which cap, if any, cut them."""
    encoded = orjson.dumps(rows, default=_jsonable)
    head = orjson.dumps({"columns": columns, "truncated": cut, "elapsed_ms": elapsed_ms})
    return web.Response(body=head[:-1] + b',"rows":' + encoded + b"}", content_type="application/json")


def _query_error(err: QueryError) -> web.Response:
    message = " ".join(str(err).split())
    kind = "deadline" if "deadline" in message and message.startswith("query interrupted") else "sql"
    return _json({"error": message, "offset": getattr(err, "offset", None), "kind": kind}, status=400)


def _error(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status=status)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value, default=_jsonable), status=status, content_type="application/json")


def _line(value: Any) -> bytes:
    return orjson.dumps(value, default=_jsonable) + b"\n"


def _event(name: str, value: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(value, default=_jsonable) + b"\n\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()  # as the control socket sends BLOBs
    raise TypeError(f"cannot send a {type(value).__name__}")
