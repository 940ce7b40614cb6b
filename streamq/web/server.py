"""The console's HTTP(S) server: aiohttp on the daemon's event loop, or on its own for ``streamq serve``.

aiohttp because it is asyncio-native and well kept: the server shares the daemon's
loop (no thread, no second framework), and it streams responses (Server-Sent Events,
NDJSON) with backpressure. The page is plain HTML, CSS and JavaScript shipped in the
package (streamq/web/static): nothing is fetched from outside the host.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from aiohttp import web

from ..config.sections import FleetOptions, WebOptions, parse_listen
from ..daemon.handle import DaemonServices
from ..errors import ConfigError
from ..sql.readonly import Limits
from .api import Api
from .auth import Gate, Sessions, read_token
from .backend import Backend

log = logging.getLogger("streamq.web")
STATIC = Path(__file__).parent / "static"
# What the Live page can ask for besides SQL: `query --follow`'s windows, emit, grace, dedup, limit.
FEATURES = {"windows": True}


class WebServer:
    def __init__(self, options: WebOptions, backend: Backend, *, fleet: FleetOptions | None = None) -> None:
        if options.listen is None:
            raise ConfigError("the web console needs an address: [web] listen or --web HOST:PORT")
        self.options = options
        self.backend = backend
        self.host, self.port = parse_listen(options.listen)
        self.tls = _tls_context(options)
        self.token = read_token(options.token_file)
        self.gate = Gate(self.token, Sessions(options.session_ttl), host=self.host, port=self.port, tls=bool(self.tls))
        self.api = Api(backend, options, self.gate, fleet=fleet, features=FEATURES)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.gate.middleware], client_max_size=1024 * 1024)
        app.add_routes(self.api.routes())
        app.add_routes([web.get("/", self.index), web.get("/login", self.index)])
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        return app

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"

    @property
    def login_link(self) -> str:
        return self.url if self.options.token_file else f"{self.url}?token={self.token}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            raise ConfigError(f"[web] cannot listen on {self.options.listen}: {err.strerror or err}") from None
        where = f"token in {self.options.token_file}" if self.options.token_file else "open this link to log in"
        log.info("web console at %s (%s; serving the %s)", self.login_link, where, self.backend.description)

    async def stop(self) -> None:
        self.api.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.backend.close()


def _limits(options: WebOptions) -> Limits:
    """The console's caps, enforced as the control socket enforces its own (streamq.sql.readonly);
    under ``streamq serve`` the daemon's [control] caps bound them too."""
    return Limits(options.max_rows, options.deadline, options.max_reply_bytes)


def _tls_context(options: WebOptions) -> ssl.SSLContext | None:
    if not (options.cert and options.key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(options.cert, options.key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"[web] cert/key: cannot load {options.cert} and {options.key}: {err}") from None
    return context


async def start_web(daemon: DaemonServices) -> WebServer | None:
    """The daemon's console, listening, when ``[web] listen`` is set; a console that cannot
    start is logged and left out: the daemon's queries do not depend on it."""
    from .backend import DaemonBackend

    options: WebOptions = daemon.config.web
    if options.listen is None:
        return None
    backend = DaemonBackend(daemon, _limits(options))
    await backend.open()
    try:
        server = WebServer(options, backend, fleet=daemon.config.fleet)
        await server.start()
    except ConfigError as err:
        log.error("web console disabled: %s", err)
        await backend.close()
        return None
    return server


async def serve(options: WebOptions, socket_path: str, *, fleet: FleetOptions | None) -> int:
    """``streamq serve --connect SOCKET``: the console for a daemon elsewhere on the host, until a signal."""
    import signal

    from .backend import RemoteBackend

    backend = RemoteBackend(socket_path, _limits(options))
    await backend.request({"sql": "SELECT 1"})  # a missing daemon is an error now, not on the first page
    server = WebServer(options, backend, fleet=fleet)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0
