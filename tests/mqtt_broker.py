"""A private mosquitto for the tests: its own port on 127.0.0.1, anonymous access, killed by pid.

Use the ``mosquitto`` fixture (import it into a test module), or :func:`start_broker`
for a broker that must start late (on a port chosen before) or stop early.
Publishing and subscribing go through mosquitto_pub / mosquitto_sub when present,
else through aiomqtt.
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
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_topic(prefix: str = "streamq-test") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen | None = None
    workdir: str = ""

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def publish(self, topic: str, *payloads: str | bytes, qos: int = 1) -> None:
        """Publish each payload as one message (not retained)."""
        pub = shutil.which("mosquitto_pub")
        if pub:
            for payload in payloads:
                data = payload if isinstance(payload, bytes) else payload.encode()
                subprocess.run(
                    [pub, "-h", self.host, "-p", str(self.port), "-t", topic, "-q", str(qos), "-s"],
                    input=data,
                    check=True,
                    timeout=10,
                    capture_output=True,
                )
            return
        asyncio.run(self._publish_aiomqtt(topic, payloads, qos))

    async def _publish_aiomqtt(self, topic: str, payloads, qos: int) -> None:
        import aiomqtt

        async with aiomqtt.Client(self.host, self.port) as client:
            for payload in payloads:
                await client.publish(topic, payload, qos=qos)

    def subscribe(self, topic: str, count: int, timeout: float = 5) -> list[bytes]:
        """The next ``count`` messages on ``topic`` (fewer if ``timeout`` passes first)."""
        sub = shutil.which("mosquitto_sub")
        if sub:
            result = subprocess.run(
                [sub, "-h", self.host, "-p", str(self.port), "-t", topic, "-C", str(count), "-W", str(int(timeout))],
                capture_output=True,
                timeout=timeout + 5,
            )
            return result.stdout.splitlines()
        return asyncio.run(self._subscribe_aiomqtt(topic, count, timeout))

    async def _subscribe_aiomqtt(self, topic: str, count: int, timeout: float) -> list[bytes]:
        import aiomqtt

        out: list[bytes] = []
        async with aiomqtt.Client(self.host, self.port) as client:
            await client.subscribe(topic)
            try:
                async with asyncio.timeout(timeout):
                    async for message in client.messages:
                        out.append(bytes(message.payload))
                        if len(out) >= count:
                            break
            except TimeoutError:
                pass
        return out

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_broker(port: int | None = None, *, timeout: float = 10) -> Broker:
    """Start mosquitto on ``port`` (a free one by default); return once it accepts connections."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="streamq-mosquitto-")
    conf = Path(workdir, "mosquitto.conf")
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n")
    log = Path(workdir, "mosquitto.log")
    with log.open("wb") as err:  # a file, not a pipe: a pipe nobody reads would fill and stall the broker
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err, cwd=workdir)
    broker = Broker("127.0.0.1", port, process, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")
            broker.stop()
            pytest.fail(f"mosquitto exited at start: {text.strip()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return broker
        except OSError:
            time.sleep(0.05)
    broker.stop()
    pytest.fail(f"mosquitto did not accept connections on port {port} within {timeout}s")


@pytest.fixture(scope="module")
def mosquitto(request):
    """A broker for the module's tests; each test should still use its own topic (unique_topic())."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    holder: list[Broker] = []
    request.addfinalizer(lambda: [b.stop() for b in holder])  # cleanup registered before the start
    holder.append(start_broker())
    return holder[0]
