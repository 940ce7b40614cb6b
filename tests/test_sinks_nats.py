"""The NATS JetStream sink against a private nats-server: acks, Nats-Msg-Id dedup, outages, kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import apsw
import orjson
import pytest
from nats_server import NatsServer, nats_server_fixture, start_nats  # noqa: F401  (the fixture)
from sink_harness import BIG_QUERIES, FeedDaemon, Outbox, result_lines, unique_name, until

from conftest import retry, run_cli

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'streamq[nats]')")

from streamq.sinks.nats import NatsSink, NatsUnavailable


def sink_for(server: NatsServer, stream: str, **options) -> NatsSink:
    subject = f"{stream.lower()}.{{host}}.{{query}}"
    return NatsSink(
        "n", {"type": "nats", "url": server.url, "stream": stream, "subject": subject, **options}, host="h.1"
    )


async def test_lines_stored_in_order_with_their_ids(nats_server, tmp_path):
    stream = unique_name("S")
    lines = result_lines("q.x", 3, [{"i": i} for i in range(500)], host="h.1")
    async with Outbox(tmp_path, sink_for(nats_server, stream)) as box:
        await box.commit("q.x", lines)
        assert await until(lambda: box.sink.stats.sent == 500)
    stored = await asyncio.to_thread(nats_server.stream_messages, stream)
    assert [payload for _, payload in stored] == lines
    assert [msg_id for msg_id, _ in stored] == [f"h.1:q.x:0:3:{i}" for i in range(500)]
    # dots in the host and query names would add subject tokens: they become _
    assert box.sink._subject("q.x") == f"{stream.lower()}.h_1.q_x"


async def test_a_resend_is_stored_once(nats_server):
    """The outbox sends a batch again after a failure or a kill -9: the server drops the repeats."""
    stream = unique_name("S")
    sink = sink_for(nats_server, stream)
    await sink.start()
    try:
        first = result_lines("q", 1, [{"i": i} for i in range(300)])
        await sink.send("q", first)
        await sink.send("q", first + result_lines("q", 2, [{"i": 300}]))  # Delivery resends whole runs
        assert sink.duplicates == 300
    finally:
        await sink.close()
    stored = await asyncio.to_thread(nats_server.stream_messages, stream)
    assert len(stored) == 301 and len({msg_id for msg_id, _ in stored}) == 301


async def test_line_with_its_own_id_keeps_it(nats_server):
    stream = unique_name("S")
    sink = sink_for(nats_server, stream)
    await sink.start()
    try:
        line = orjson.dumps({"id": "given:1", "name": "q", "columns": {}})
        await sink.send("q", [line])
    finally:
        await sink.close()
    assert await asyncio.to_thread(nats_server.stream_messages, stream) == [("given:1", line)]


async def test_server_down_raises_then_delivers(tmp_path):
    server = start_nats()
    port, store = server.port, server.store
    server.stop(keep_store=True)
    stream = unique_name("S")
    try:
        sink = sink_for(NatsServer(port, store), stream)
        async with Outbox(tmp_path, sink) as box:
            with pytest.raises(NatsUnavailable, match="cannot connect"):
                await sink.send("q", result_lines("q", 0, [{"i": 0}]))
            await box.commit("q", result_lines("q", 1, [{"i": i} for i in range(50)]))
            assert await until(lambda: sink.stats.failed >= 2)
            assert await box.backlog() == (1, 50) and sink.stats.sent == 0
            server = start_nats(port, store)
            assert await until(lambda: sink.stats.sent == 50, timeout=40), sink.stats
            assert await box.backlog() == (0, 0)
        assert await asyncio.to_thread(server.stream_count, stream) == 50
    finally:
        server.stop()


async def test_outage_loses_nothing_and_repeats_nothing(tmp_path):
    """Runs keep coming while the server is away for 5 s; every row is stored once, in order."""
    server = start_nats()
    stream = unique_name("S")
    try:
        sink = sink_for(server, stream, ack_timeout=2.0)
        async with Outbox(tmp_path, sink) as box:
            expected = []
            for counter in range(60):
                lines = result_lines("q", counter, [{"c": counter, "i": i} for i in range(20)])
                expected += lines
                await box.commit("q", lines)
                await asyncio.sleep(0.1)
                if counter == 10:
                    port, store = server.port, server.store
                    await asyncio.to_thread(server.stop, keep_store=True)
                    down = time.monotonic()
                if counter == 50:
                    await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - down)))
                    server = await asyncio.to_thread(start_nats, port, store)
            assert await until(lambda: sink.stats.sent >= len(expected), timeout=60), sink.stats
            assert sink.stats.failed >= 1 and sink.stats.spooled >= 1
        stored = await asyncio.to_thread(server.stream_messages, stream)
        assert [payload for _, payload in stored] == expected
    finally:
        server.stop()


KILL_CONFIG = """type = "nats"
url = "{url}"
stream = "{stream}"
subject = "{subject}.{{host}}.{{query}}"
"""


def test_kill9_mid_delivery_is_exactly_once(tmp_path, nats_server, request):
    stream = unique_name("S")
    sink_toml = KILL_CONFIG.format(url=nats_server.url, stream=stream, subject=stream.lower())
    daemon = FeedDaemon(tmp_path, sink_toml, extra=BIG_QUERIES)
    request.addfinalizer(daemon.stop)
    daemon.start()
    assert retry(lambda: nats_server.stream_count(stream) > 0, timeout=20, interval=0.02)
    # Freeze the server mid-delivery: what the daemon wrote since reaches the stream when it
    # thaws, but the daemon, killed meanwhile, never saw those acks and sends them again.
    os.kill(nats_server.process.pid, signal.SIGSTOP)
    try:
        daemon.kill9()
    finally:
        os.kill(nats_server.process.pid, signal.SIGCONT)
    with apsw.Connection(str(tmp_path / "state.db")) as db:
        left = db.execute("SELECT coalesce(sum(rows), 0) FROM outbox WHERE sink = 'out'").fetchall()[0][0]
    assert left > 0, "the kill came after delivery ended: nothing to resend"
    daemon.start()
    assert retry(lambda: nats_server.stream_count(stream) >= 40_000, timeout=60), nats_server.stream_count(stream)
    time.sleep(0.5)  # a duplicate would have arrived by now
    stored = nats_server.stream_messages(stream)
    numbers = [orjson.loads(payload)["columns"]["n"] for _, payload in stored]
    assert sorted(numbers) == list(range(40_000))
    assert len({msg_id for msg_id, _ in stored}) == 40_000


def test_bad_options_are_config_errors(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[sinks.n]\ntype = "nats"\nurl = "http://x:1"\n[queries.q]\nsql = "SELECT 1"\ninterval = 60\n')
    result = run_cli("run", "--check", "-c", str(cfg))
    assert result.returncode == 2
    assert "nats://host:port" in result.stderr and len(result.stderr.strip().splitlines()) == 1
