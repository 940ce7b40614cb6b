"""Receivers for bench_sinks.py, each in a child process so it does not share our interpreter's time:
an aiohttp server answering 200 to every POST, and a TCP listener that reads and discards bytes."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

HTTP_SERVER = """
import sys
from aiohttp import web
async def hook(request):
    await request.read()
    return web.Response(text="ok")
app = web.Application(client_max_size=1 << 30)
app.router.add_post("/hook", hook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

TCP_SINKHOLE = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
while True:
    conn, _ = server.accept()
    while conn.recv(1 << 20):
        pass
    conn.close()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _child(code: str) -> Iterator[int]:
    port = _free_port()
    child = subprocess.Popen([sys.executable, "-c", code, str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        child.kill()
        child.wait()


@contextlib.contextmanager
def http_receiver() -> Iterator[str]:
    with _child(HTTP_SERVER) as port:
        yield f"http://127.0.0.1:{port}/hook"


@contextlib.contextmanager
def tcp_counter() -> Iterator[int]:
    with _child(TCP_SINKHOLE) as port:
        yield port
