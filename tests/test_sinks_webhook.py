"""The webhook sink against a local HTTP server (the standard library's): batches, order, HMAC,
an outage of 10 s then 503s (every row arrives once, in order), and refusals (4xx) not retried."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from mqtt_broker import free_port
from sink_harness import Outbox, result_lines, until

from conftest import run_cli
from streamq.sinks.webhook import WebhookSink, WebhookUnavailable


class Receiver:
    """An HTTP server on 127.0.0.1:port that records POSTed bodies; ``answer`` sets the status it replies."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[tuple[dict, bytes]] = []
        self.refused = 0  # requests answered with something else than 200
        self.answer = 200
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answer
                if status == 200:
                    receiver.requests.append((dict(self.headers), body))
                else:
                    receiver.refused += 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status >= 300 else b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def lines(self) -> list[bytes]:
        return [orjson.dumps(item) for _, body in self.requests for item in json.loads(body)]


@pytest.fixture
def receiver(request):
    made: list[Receiver] = []
    request.addfinalizer(lambda: [r.stop() for r in made])
    made.append(Receiver().start())
    return made[0]


def webhook(url: str, **options) -> WebhookSink:
    return WebhookSink("w", {"type": "webhook", "url": url, **options}, host="h1")


async def test_batches_in_order_signed(receiver, tmp_path):
    sink = webhook(receiver.url, batch_size=40, secret="k3y", headers={"Authorization": "Bearer t"})
    lines = result_lines("q", 7, [{"i": i} for i in range(100)])
    async with Outbox(tmp_path, sink) as box:
        await box.commit("q", lines)
        assert await until(lambda: sink.stats.sent == 100)
    assert [len(json.loads(body)) for _, body in receiver.requests] == [40, 40, 20]
    assert receiver.lines() == lines
    for (headers, body), first in zip(receiver.requests, (0, 40, 80)):
        assert headers["Content-Type"] == "application/json" and headers["Authorization"] == "Bearer t"
        expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        assert headers["X-Streamq-Signature"] == f"sha256={expected}"
        assert headers["Idempotency-Key"] == f"h1:q:0:7:{first}+{min(40, 100 - first)}"


async def test_outage_then_503s_every_row_once_in_order(tmp_path):
    """The receiver goes away for 10 s, then answers 503 (to at least two requests); rows keep coming."""
    receiver = Receiver().start()
    try:
        sink = webhook(receiver.url, batch_size=7, timeout=2.0)
        expected: list[bytes] = []
        async with Outbox(tmp_path, sink) as box:
            for counter in range(150):
                lines = result_lines("q", counter, [{"c": counter, "i": i} for i in range(3)])
                expected += lines
                await box.commit("q", lines)
                await asyncio.sleep(0.1)
                if counter == 10:
                    await asyncio.to_thread(receiver.stop)
                    down = time.monotonic()
                if counter == 110:  # about 10 s later
                    await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - down)))
                    receiver.answer = 503
                    await asyncio.to_thread(receiver.start)
                    unavailable = time.monotonic()
                if counter == 140:  # at least 3 s of 503s, and two retries seen (backoff may be ~13 s now)
                    await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - unavailable)))
                    assert await until(lambda: receiver.refused >= 2, timeout=40)
                    receiver.answer = 200
            assert await until(lambda: sink.stats.sent >= len(expected), timeout=60), sink.stats
            assert sink.stats.failed >= 2 and sink.stats.spooled > 0 and sink.stats.rejected == 0
            assert "503" in sink.stats.last_error
        assert receiver.lines() == expected  # each row once, in order
    finally:
        receiver.stop()


async def test_a_refusal_is_counted_and_not_retried(receiver, tmp_path):
    sink = webhook(receiver.url)
    async with Outbox(tmp_path, sink) as box:
        receiver.answer = 422
        await box.commit("q", result_lines("q", 1, [{"i": 0}, {"i": 1}]))
        assert await until(lambda: sink.stats.rejected == 2)
        receiver.answer = 200
        await box.commit("q", result_lines("q", 2, [{"i": 2}]))
        assert await until(lambda: sink.stats.sent == 1)
        assert sink.stats.failed == 0 and "HTTP 422" in sink.stats.last_error
        assert await box.backlog() == (0, 0)
    assert [orjson.loads(line)["columns"] for line in receiver.lines()] == [{"i": 2}]


async def test_nobody_listening_raises():
    sink = webhook(f"http://127.0.0.1:{free_port()}/x", timeout=2.0)
    await sink.start()
    try:
        with pytest.raises(WebhookUnavailable, match=r"127\.0\.0\.1"):
            await sink.send("q", result_lines("q", 1, [{"i": 0}]))
    finally:
        await sink.close()


def test_bad_options_are_config_errors(tmp_path):
    cfg = tmp_path / "bad.toml"
    for options, words in (
        ('url = "ftp://x/y"', "http://host/path"),
        ('url = "http://x/"\nheaders = { A = 1 }', "header"),
        (f'url = "http://x/"\nsecret_file = "{tmp_path}/missing"', "cannot read"),
    ):
        cfg.write_text(f'[sinks.w]\ntype = "webhook"\n{options}\n[queries.q]\nsql = "SELECT 1"\ninterval = 60\n')
        result = run_cli("run", "--check", "-c", str(cfg))
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
