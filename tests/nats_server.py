"""A private nats-server with JetStream for the tests: its own port on 127.0.0.1 and store directory.

Use the ``nats_server`` fixture (import it into a test module), or :func:`start_nats`
for a server that must start late (on a port chosen before) or stop early. The
machine's own nats-server (port 4222) is never touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mqtt_broker import free_port

NATS_SERVER = shutil.which("nats-server") or next(
    (p for p in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server") if os.path.exists(p)), None
)


@dataclass
class NatsServer:
    port: int
    store: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self, *, keep_store: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if not keep_store:
            shutil.rmtree(self.store, ignore_errors=True)

    def stream_messages(self, stream: str, timeout: float = 10) -> list[tuple[str, bytes]]:
        """Every message the stream holds, in order, as (Nats-Msg-Id, payload), read by a fresh consumer."""
        return asyncio.run(_read_stream(self.url, stream, timeout))

    def stream_count(self, stream: str) -> int:
        return asyncio.run(_stream_count(self.url, stream))


async def _read_stream(url: str, stream: str, timeout: float) -> list[tuple[str, bytes]]:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        total = (await js.stream_info(stream)).state.messages
        sub = await js.subscribe(">", stream=stream, ordered_consumer=True)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < total and time.monotonic() < deadline:
            msg = await sub.next_msg(timeout=max(0.1, deadline - time.monotonic()))
            out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), msg.data))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def _stream_count(url: str, stream: str) -> int:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    except NotFoundError:
        return 0
    finally:
        await nc.close()


def start_nats(port: int | None = None, store: str | None = None, *, timeout: float = 10) -> NatsServer:
    """Start nats-server -js on ``port`` (a free one by default); return once it accepts connections."""
    if NATS_SERVER is None:
        pytest.skip("nats-server is not installed")
    pytest.importorskip("nats", reason="nats-py is not installed")
    port = port or free_port()
    store = store or tempfile.mkdtemp(prefix="streamq-nats-")
    log = Path(store, "nats.log")
    with log.open("ab") as err:  # a file, not a pipe: a pipe nobody reads would stall the server
        process = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    server = NatsServer(port, store, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")
            server.stop()
            pytest.fail(f"nats-server exited at start: {text.strip()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                if s.recv(4).startswith(b"INFO"):
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    pytest.fail(f"nats-server did not accept connections on port {port} within {timeout}s")


@pytest.fixture(scope="module", name="nats_server")
def nats_server_fixture(request):
    """A JetStream server for the module's tests; each test should use its own stream name."""
    holder: list[NatsServer] = []
    request.addfinalizer(lambda: [s.stop() for s in holder])  # cleanup registered before the start
    holder.append(start_nats())
    return holder[0]
