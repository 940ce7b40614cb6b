"""The jsonl source: a followed file of JSON lines, through rotation, truncation and bad input."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

import streamq
from conftest import ROOT, follow_while, run_cli
from streamq.errors import ConfigError
from streamq.ring import Rings
from streamq.sources.base import supervise
from streamq.sources.jsonl import JsonlSource, LineSplitter
from streamq.sources.records import declare_record_table


def _options(path, **extra):
    options = {
        "path": str(path),
        "columns": {"n": "INTEGER"},
        "from_start": True,
        "checkpoint": None,
        "max_line_bytes": 1000,
        "poll_interval": 0.02,
    }
    options.update(extra)
    return options


class Running:
    """A source under the supervisor, in the test's event loop."""

    def __init__(self, path, table="t", **extra):
        self.rings = Rings(capacity=10_000, max_age=None)
        self.source = JsonlSource(table, _options(path, **extra), self.rings)
        self.task = None

    async def __aenter__(self):
        self.task = asyncio.create_task(supervise(self.source))
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def values(self):
        return [row[0] for _eid, _t, row in self.rings.ring(self.source.table)]  # rows: (n, raw)

    async def wait_values(self, expected, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.values() != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert self.values() == expected
        assert self.source.status.errors == 0, self.source.status.last_error


def _lines(numbers):
    return "".join(json.dumps({"n": n, "extra": f"x{n}"}) + "\n" for n in numbers)


def _append(path, text):
    with open(path, "ab") as f:
        f.write(text if isinstance(text, bytes) else text.encode())


async def test_rotation_reads_old_file_to_its_end_then_the_new_one(tmp_path):
    log = tmp_path / "app.log"
    log.write_text(_lines(range(3)))
    async with Running(log) as run:
        await run.wait_values([0, 1, 2])
        os.rename(log, tmp_path / "app.log.1")
        _append(tmp_path / "app.log.1", _lines([3, 4]))  # the writer still holds the old file
        log.write_text(_lines([5, 6]))  # then reopens the path: a new inode
        await run.wait_values([0, 1, 2, 3, 4, 5, 6])
        assert str(os.stat(log).st_ino) in run.source.status.mode
        _append(log, _lines([7]))
        await run.wait_values([0, 1, 2, 3, 4, 5, 6, 7])


async def test_truncation_restarts_at_zero(tmp_path):
    log = tmp_path / "app.log"
    log.write_text(_lines(range(5)))
    async with Running(log) as run:
        await run.wait_values([0, 1, 2, 3, 4])
        os.truncate(log, 0)
        await asyncio.sleep(0.1)
        _append(log, _lines([10]))
        await run.wait_values([0, 1, 2, 3, 4, 10])
        # copytruncate refilled past our offset between two polls: caught by the changed first bytes
        log.write_text(_lines(range(20, 30)))
        await run.wait_values([0, 1, 2, 3, 4, 10, *range(20, 30)])


async def test_bad_lines_are_counted_and_the_stream_goes_on(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    async with Running(log, max_line_bytes=100) as run:
        _append(log, _lines([1]))
        _append(log, b"not json\n\xff\xfe\x00\x01 binary \x80\n[1, 2]\n")
        _append(log, b'{"n": ' + b"9" * 200 + b"}\n")  # over max_line_bytes
        _append(log, b"y" * 500)  # an oversize line still without its newline
        _append(log, b"y" * 500 + b"\n" + _lines([2]).encode())
        _append(log, b'{"n": 3, "half"')  # half-written: held, never emitted as a record
        await run.wait_values([1, 2])
        await asyncio.sleep(0.15)
        assert run.values() == [1, 2]
        assert run.source.status.skipped == 5  # not json, binary, array, oversize, long partial
        _append(log, b': "written"}\n')
        await run.wait_values([1, 2, 3])
        assert run.source.status.skipped == 5
        assert run.source.status.active


async def test_checkpoint_resume_loses_and_repeats_nothing(tmp_path):
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "app.checkpoint"
    log.write_text(_lines(range(100)))
    async with Running(log, checkpoint=str(checkpoint)) as run:
        await run.wait_values(list(range(100)))
        _append(log, _lines([100]) + '{"n": 101')
        await run.wait_values(list(range(101)))
    saved = json.loads(checkpoint.read_text())
    assert saved["inode"] == os.stat(log).st_ino
    assert saved["offset"] == len(_lines(range(101)))  # the half line is not checkpointed
    _append(log, "}\n" + _lines(range(102, 150)))  # written while the source was down
    async with Running(log, checkpoint=str(checkpoint), from_start=False) as run:
        await run.wait_values(list(range(101, 150)))
    # the file was replaced while the source was down: the new one is read from its start
    os.rename(log, tmp_path / "app.log.1")
    log.write_text(_lines([500, 501]))
    async with Running(log, checkpoint=str(checkpoint), from_start=False) as run:
        await run.wait_values([500, 501])


async def test_without_checkpoint_from_start_false_begins_at_the_end(tmp_path):
    log = tmp_path / "app.log"
    log.write_text(_lines([1, 2]) + '{"n": 3, "mid')  # the writer is mid-line right now
    async with Running(log, from_start=False) as run:
        await asyncio.sleep(0.1)
        _append(log, 'line"}\n' + _lines([4]))
        await run.wait_values([4])
        assert run.source.status.skipped == 0  # the rest of a line we never saw is not "malformed"


async def test_a_file_that_appears_later_is_read_from_its_start(tmp_path):
    log = tmp_path / "later.log"
    async with Running(log, from_start=False) as run:
        await asyncio.sleep(0.1)
        assert "waiting" in run.source.status.mode
        log.write_text(_lines([1, 2]))
        await run.wait_values([1, 2])


async def test_columns_are_typed_and_every_key_stays_in_raw(tmp_path):
    log = tmp_path / "typed.log"
    log.write_text(
        '{"user": "ann", "status": "503", "ms": 1.5, "extra": {"k": [1, 2]}}\n'
        '{"user": 7, "status": "n/a", "ms": "fast"}\n'
    )
    columns = {"user": "TEXT", "status": "INTEGER", "ms": "DOUBLE"}
    declare_record_table("jsonl_typed_events", columns, source="jsonl.typed")
    rings = Rings(capacity=100, max_age=None)
    source = JsonlSource("jsonl_typed_events", _options(log, columns=columns), rings)
    task = asyncio.create_task(supervise(source))
    try:
        deadline = time.monotonic() + 5
        while len(rings.ring("jsonl_typed_events")) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with streamq.connect(rings=rings) as conn:
        rows = conn.query(
            "SELECT user, status, ms, json_extract(raw, '$.extra.k[1]') AS k, typeof(time) AS t "
            "FROM jsonl_typed_events ORDER BY eid"
        )
        events = conn.query("SELECT * FROM streamq_events WHERE name = 'jsonl_typed_events'")
    assert rows == [
        {"user": "ann", "status": 503, "ms": 1.5, "k": 2, "t": "integer"},
        {"user": "7", "status": None, "ms": None, "k": None, "t": "integer"},
    ]
    assert events[0]["source"] == "jsonl" and events[0]["kind"] == "stream" and events[0]["events"] == 2


def test_reserved_and_taken_names_are_config_errors():
    with pytest.raises(ConfigError, match="time"):
        declare_record_table("jsonl_reserved_events", {"time": "TEXT"}, source="jsonl.x")
    with pytest.raises(ConfigError, match="built-in"):
        declare_record_table("processes", {"a": "TEXT"}, source="jsonl.x")
    declare_record_table("jsonl_twice_events", {"a": "TEXT"}, source="jsonl.x")
    with pytest.raises(ConfigError, match="other columns"):
        declare_record_table("jsonl_twice_events", {"b": "TEXT"}, source="jsonl.y")


def test_line_splitter_never_emits_a_partial_line():
    skipped = []
    split = LineSplitter(10, skipped.append)
    assert split.feed(b'{"a"') == []
    assert split.feed(b":1}\n{") == [b'{"a":1}']
    assert split.feed(b"x" * 20) == [] and len(skipped) == 1  # oversize: dropped up to its newline
    assert split.feed(b"yy\nok\n") == [b"ok"]
    assert split.finish() == b""


async def test_stdin_pipe_is_read_to_its_end(tmp_path):
    # The source reads fd 0; run it in a child whose stdin is a pipe the test writes slowly.
    script = (
        "import asyncio, json\n"
        "from streamq.ring import Rings\n"
        "from streamq.sources.jsonl import JsonlSource\n"
        "rings = Rings()\n"
        "src = JsonlSource('t', {'path': '-', 'columns': {'n': 'INTEGER'}}, rings)\n"
        "asyncio.run(asyncio.wait_for(src.run(), 10))\n"
        "print(json.dumps([r[0] for _, _, r in rings.ring('t')]), src.status.skipped, src.status.mode, sep='|')\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    child.stdin.write('{"n": 1}\n{"n": ')
    child.stdin.flush()
    time.sleep(0.2)
    child.stdin.write('2}\nbroken\n{"n": 3}')  # no final newline: a complete record all the same
    child.stdin.close()
    out = child.stdout.read()
    assert child.wait(15) == 0
    assert out.split("|") == ["[1, 2, 3]", "1", "stdin ended\n"]


def test_follow_cli_sees_appended_lines(tmp_path):
    log = tmp_path / "web.log"
    log.write_text(json.dumps({"user": "old", "status": 500}) + "\n")  # before start: not a new event
    cfg = tmp_path / "streamq.toml"
    cfg.write_text(
        f'[sources.jsonl.web]\npath = "{log}"\npoll_interval = "20ms"\n'
        '[sources.jsonl.web.columns]\nuser = "TEXT"\nstatus = "INTEGER"\n'
    )

    def writer(done):
        n = 0
        while not done.wait(0.2):
            _append(log, _lines([n]) + json.dumps({"user": f"u{n}", "status": 503, "path": "/x"}) + "\n")
            n += 1

    sql = "SELECT user, status, json_extract(raw, '$.path') AS path FROM web_events WHERE status >= 500"
    rows = follow_while(writer, cfg, sql, count=2, timeout=15)
    assert len(rows) == 2
    assert all(r["status"] == 503 and r["path"] == "/x" and r["user"].startswith("u") for r in rows)


def test_config_with_a_reserved_column_exits_2(tmp_path):
    cfg = tmp_path / "streamq.toml"
    cfg.write_text(f'[sources.jsonl.bad]\npath = "{tmp_path}/x.log"\ncolumns = {{ raw = "TEXT" }}\n')
    result = run_cli("query", "-c", str(cfg), "SELECT * FROM bad_events")
    assert result.returncode == 2
    assert "raw" in result.stderr and len(result.stderr.strip().splitlines()) == 1
