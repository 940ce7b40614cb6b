"""Who may use the console: a login token, cookie sessions, CSRF tokens and the security headers.

- The token is random and printed at start as a ready link (Jupyter's way), or read
  from ``[web] token_file``. Opening ``/?token=...`` (or ``/login?token=...``) with the
  right token starts a session and redirects to the same page without the token.
- A session is a random id in an HttpOnly, SameSite=Strict cookie; it expires after
  ``session_ttl``, and at most ``MAX_SESSIONS`` live at once (the oldest goes first).
- Every request that is not GET/HEAD must carry the session's CSRF token in the
  ``X-CSRF-Token`` header, and an ``Origin``, when sent, must be the console's own.
- The Host header must name the address served: a page on another name that
  resolves to 127.0.0.1 (DNS rebinding) gets no answer.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

from ..config.sections import is_loopback
from ..errors import ConfigError

log = logging.getLogger("streamq.web")
COOKIE = "streamq_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 256
SAFE_METHODS = frozenset({"GET", "HEAD"})
# Everything the page uses comes from its own origin; nothing inline, nothing from elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the login link holds the token: never pass it on
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def read_token(token_file: str | None) -> str:
    """The login token: the file's first line, or a new random one."""
    if token_file is None:
        return secrets.token_urlsafe(24)
    try:
        with open(token_file, encoding="utf-8") as f:
            token = f.readline().strip()
    except (OSError, UnicodeError) as err:
        raise ConfigError(
            f"[web] token_file: cannot read {token_file}: {getattr(err, 'strerror', None) or err}"
        ) from None
    if len(token) < 16:
        raise ConfigError(f"[web] token_file: {token_file} must hold a token of 16 characters or more")
    return token


@dataclass
class Session:
    id: str
    csrf: str
    expires: float


class Sessions:
    """The logged-in browsers, bounded in number and in time."""

    def __init__(self, ttl: float, *, limit: int = MAX_SESSIONS) -> None:
        self.ttl = ttl
        self.limit = limit
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def new(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.monotonic() + self.ttl)
        self._by_id[session.id] = session
        while len(self._by_id) > self.limit:
            self._by_id.popitem(last=False)
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session with this id; None for an unknown (forged, evicted) or expired one."""
        session = self._by_id.get(sid or "")
        if session is None:
            return None
        if session.expires < time.monotonic():
            del self._by_id[session.id]
            return None
        return session

    def __len__(self) -> int:
        return len(self._by_id)


class Gate:
    """The middleware: headers on every answer, login by token, session and CSRF checks."""

    def __init__(self, token: str, sessions: Sessions, *, host: str, port: int, tls: bool) -> None:
        self.token = token
        self.sessions = sessions
        self.tls = tls
        self.port = port
        self.allowed_hosts = _host_names(host, port)
        self.refused = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            response = await self._check(request, handler)
        except web.HTTPException as exc:  # a handler's 400/404/413: answered with the same headers
            response = web.Response(status=exc.status, text=exc.text, content_type="text/plain")
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    async def _check(self, request: web.Request, handler) -> web.StreamResponse:
        if self.allowed_hosts is not None and request.host.lower() not in self.allowed_hosts:
            return self._refuse(request, 421, f"Host {request.host!r} is not this console's address")
        if request.path.startswith("/static/"):
            return await handler(request)
        token = request.query.get("token")
        if token is not None and request.method in SAFE_METHODS:
            return self._login(request, token)
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            if request.path.startswith("/api/"):
                return web.json_response(
                    {"error": "not logged in, or the session expired: open the login link"}, status=401
                )
            return _page("Log in", "Open the link streamq printed at start, or paste the token:", status=401, form=True)
        if request.method not in SAFE_METHODS:
            problem = self._csrf_problem(request, session)
            if problem:
                return self._refuse(request, 403, problem)
        request["session"] = session
        return await handler(request)

    def _login(self, request: web.Request, token: str) -> web.StreamResponse:
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            self.refused += 1
            log.warning("web: refused a login with a wrong token from %s", request.remote)
            return _page("Wrong token", "That token is not this console's. Open the link streamq printed.", status=403)
        session = self.sessions.new()
        response = web.Response(status=303, headers={"Location": "/" if request.path == "/login" else request.path})
        response.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="Strict",
            secure=self.tls,
            path="/",
            max_age=int(self.sessions.ttl),
        )
        return response

    def _csrf_problem(self, request: web.Request, session: Session) -> str | None:
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() not in self._origins(request):
            return f"cross-origin request from {origin}"
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            return "missing or wrong CSRF token" if sent else "no CSRF token"
        return None

    def _origins(self, request: web.Request) -> set[str]:
        scheme = "https" if self.tls else "http"
        names = self.allowed_hosts if self.allowed_hosts is not None else {request.host.lower()}
        return {f"{scheme}://{name}" for name in names}

    def _refuse(self, request: web.Request, status: int, why: str) -> web.Response:
        self.refused += 1
        log.warning("web: refused %s %s: %s", request.method, request.path, why)
        return web.json_response({"error": f"refused: {why}"}, status=status)


def _host_names(host: str, port: int) -> set[str] | None:
    """The Host headers a browser sends for this address (loopback answers to its usual names);
    None for a wildcard address, whose names cannot be known."""
    if host in ("0.0.0.0", "::", ""):
        return None
    bracketed = f"[{host}]" if ":" in host else host
    names = {f"{bracketed}:{port}"}
    if is_loopback(host):
        names |= {f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
    return {n.lower() for n in names}


def _page(title: str, text: str, *, status: int, form: bool = False) -> web.Response:
    login = (
        '<form action="/login" method="get"><input name="token" type="password" autocomplete="off" '
        'placeholder="token" autofocus> <button>Log in</button></form>'
        if form
        else ""
    )
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>streamq: '
        f'{title}</title><link rel="stylesheet" href="/static/style.css"></head><body class="gate">'
        f"<h1>streamq</h1><h2>{title}</h2><p>{text}</p>{login}</body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html")
