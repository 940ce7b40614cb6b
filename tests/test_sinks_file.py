"""The file sink and the outbox delivery that feeds it: whole lines, rotation, fsync policies,
exactly once across a crash, retries and the backlog bound."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from streamq.daemon.state import QueryState, StateStore
from streamq.sinks.delivery import Delivery
from streamq.sinks.file import FileSink
from streamq.sql.thread import SqlThread


def line(i: int, pad: int = 40) -> bytes:
    return json.dumps({"name": "q", "counter": i, "columns": {"i": i, "pad": "x" * pad}}).encode()


def read_lines(path) -> list[dict]:
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), "a file ends inside a line"
    return [json.loads(raw) for raw in data.split(b"\n")[:-1]]


def rotated_set(path) -> list[str]:
    """Current file plus rotations, oldest first."""
    base = str(path)
    numbered = sorted(
        (p for p in os.listdir(os.path.dirname(base)) if p.startswith(os.path.basename(base) + ".")),
        key=lambda p: int(p.rsplit(".", 1)[1]),
        reverse=True,
    )
    return [os.path.join(os.path.dirname(base), p) for p in numbered] + [base]


async def started(path, **options) -> FileSink:
    sink = FileSink("out", {"path": str(path), **options}, host="h")
    await sink.start()
    return sink


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
async def test_fsync_policies_write_every_line(tmp_path, policy):
    path = tmp_path / "out.jsonl"
    sink = await started(path, fsync=policy, fsync_interval=0.01)
    for i in range(50):
        await sink.send("q", [line(2 * i), line(2 * i + 1)])
    await sink.flush()
    assert not sink._dirty or policy == "never"
    await sink.close()
    assert [item["counter"] for item in read_lines(path)] == list(range(100))
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"


async def test_rotation_keeps_at_most_keep_files_of_whole_lines(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = await started(path, rotate_bytes=2_000, keep=3, fsync="never")
    for i in range(0, 600, 3):
        await sink.send("q", [line(i), line(i + 1), line(i + 2)])
    await sink.close()
    files = rotated_set(path)
    assert len(files) == 4, files  # the live file and keep = 3 rotations
    assert not os.path.exists(f"{path}.4")
    counters = []
    for name in files:
        assert os.path.getsize(name) <= 2_000
        counters += [item["counter"] for item in read_lines(name)]
    # The files hold a contiguous tail of what was written, oldest file first, nothing torn.
    assert counters == list(range(600 - len(counters), 600))
    assert len(counters) > 30


async def test_rotation_with_keep_zero_only_keeps_the_live_file(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = await started(path, rotate_bytes=500, keep=0)
    for i in range(40):
        await sink.send("q", [line(i)])
    await sink.close()
    assert os.listdir(tmp_path) == ["out.jsonl"]
    assert read_lines(path)[-1]["counter"] == 39


async def test_a_batch_bigger_than_rotate_bytes_is_still_one_whole_write(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = await started(path, rotate_bytes=100, keep=2)
    await sink.send("q", [line(0)])
    await sink.send("q", [line(i, pad=200) for i in range(1, 6)])
    await sink.close()
    assert [item["counter"] for item in read_lines(path)] == [1, 2, 3, 4, 5]
    assert [item["counter"] for item in read_lines(f"{path}.1")] == [0]


async def test_first_batch_after_a_crash_is_not_written_twice(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = await started(path)
    await sink.send("q", [line(0), line(1)])
    os.close(sink._fd)  # the process died before the outbox learnt of the write
    again = await started(path)
    await again.send("q", [line(0), line(1)])  # the outbox hands the same batch over again
    await again.send("q", [line(2)])
    await again.close()
    assert [item["counter"] for item in read_lines(path)] == [0, 1, 2]
    other = await started(path)
    await other.send("q", [line(3)])  # a new batch after a restart is written as usual
    await other.close()
    assert [item["counter"] for item in read_lines(path)] == [0, 1, 2, 3]


async def test_missing_directories_are_made_and_a_closed_sink_refuses(tmp_path):
    path = tmp_path / "sub" / "dir" / "out.jsonl"
    sink = await started(path)
    assert path.exists()
    await sink.close()
    with pytest.raises(OSError):
        await sink.send("q", [line(0)])


# -- the outbox and its delivery -----------------------------------------------------------------


@pytest.fixture
async def store(tmp_path):
    sql = SqlThread()
    state = await sql(StateStore, str(tmp_path / "state.db"))
    yield sql, state
    await sql(state.close)
    sql.close()


async def queue(sql, state, sink: str, batches: list[list[bytes]]) -> None:
    def commit():
        qs = QueryState("h")
        for lines in batches:
            qs.counter += 1
            state.commit("q", qs, [(sink, len(lines), lines)])

    await sql(commit)


async def test_delivery_moves_the_outbox_in_order_and_empties_it(tmp_path, store):
    sql, state = store
    path = tmp_path / "out.jsonl"
    sink = await started(path, rotate_bytes=20_000, keep=50)
    await queue(sql, state, "out", [[line(i), line(i + 1)] for i in range(0, 1000, 2)])
    delivery = Delivery(sink, state, sql)
    task = asyncio.create_task(delivery.run())
    try:
        assert await delivery.drain(10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await sink.close()
    counters = [item["counter"] for name in rotated_set(path) for item in read_lines(name)]
    assert counters == list(range(1000))
    assert sink.stats.sent == 1000 and sink.stats.queued == 0
    assert await sql(state.backlog, "out") == (0, 0)


async def test_failed_send_is_retried_not_lost_or_duplicated(tmp_path, store):
    sql, state = store
    path = tmp_path / "out.jsonl"
    sink = await started(path)
    os.close(sink._fd)
    sink._fd = -1  # every send fails until the file is reopened
    await queue(sql, state, "out", [[line(0)], [line(1)]])
    delivery = Delivery(sink, state, sql)
    task = asyncio.create_task(delivery.run())
    try:
        delivery.wake.set()
        for _ in range(200):
            if sink.stats.failed >= 1:
                break
            await asyncio.sleep(0.01)
        assert sink.stats.failed >= 1 and "closed" in sink.stats.last_error
        assert sink.stats.sent == 0 and sink.stats.queued == 2
        sink._open()  # the sink recovers: the backoff retry delivers everything, once
        assert await delivery.drain(5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await sink.close()
    assert [item["counter"] for item in read_lines(path)] == [0, 1]
    assert sink.stats.sent == 2 and sink.stats.dropped == 0


async def test_backlog_over_its_bound_drops_oldest_and_counts(tmp_path, store):
    sql, state = store
    sink = await started(tmp_path / "out.jsonl")
    await queue(sql, state, "out", [[line(i)] for i in range(10)])
    delivery = Delivery(sink, state, sql, max_backlog_rows=4)
    await delivery.refresh_backlog()
    assert sink.stats.dropped == 6 and sink.stats.queued == 4
    pending = await sql(state.pending, "out")
    assert [json.loads(b.lines[0])["counter"] for b in pending] == [6, 7, 8, 9]
    await sink.close()
