"""`streamq tail --window`: the same bytes whatever the chunking, counts equal to SQLite's GROUP BY
over the whole file, late and time-less records counted, bad options refused with exit 2."""

from __future__ import annotations

import json
import random
import shlex
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, run_cli

COUNT_SQL = "SELECT status, count(*) AS n FROM stream GROUP BY status"


def make_records(n: int = 3000, seed: int = 11, disorder: float = 2.0) -> list[dict]:
    rng = random.Random(seed)
    t, out = 1_700_000_000.0, []
    for i in range(n):
        t += rng.random() * 0.01
        late = rng.random() * disorder if rng.random() < 0.05 else 0.0
        out.append(
            {"ts": round(t - late, 3), "user": f"u{rng.randrange(4)}", "status": rng.choice([200, 404, 500]), "i": i}
        )
    return out


def as_text(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def tail_chunked(args: list[str], text: str, chunk: int, pause: float) -> subprocess.CompletedProcess:
    """`streamq tail - ARGS` with stdin written ``chunk`` lines at a time, pausing between chunks."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamq", "tail", "-", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    lines = text.splitlines(keepends=True)
    got: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda name=name, f=f: got.__setitem__(name, f.read()), daemon=True)
        for name, f in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    for start in range(0, len(lines), chunk):
        proc.stdin.write("".join(lines[start : start + chunk]).encode())
        proc.stdin.flush()
        if pause and (start // chunk) % max(1, 100 // chunk) == 0:
            time.sleep(pause)  # the reader sees this chunk on its own
    proc.stdin.close()
    proc.wait(120)
    for reader in readers:
        reader.join(10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, got["out"], got["err"])


@pytest.mark.parametrize(
    "options",
    [
        ["--window", "tumble 1s", "--sql", COUNT_SQL],
        ["--window", "hop 2s every 500ms", "--grace", "1s", "--sql", COUNT_SQL],
        [
            "--window",
            "session 50ms",
            "--window-key",
            "user",
            "--sql",
            "SELECT user, count(*) AS n FROM stream GROUP BY user",
        ],
        ["--window", "tumble 1s", "--emit", "changes", "--sql", COUNT_SQL],
    ],
)
def test_the_same_bytes_at_any_speed_and_chunking(options):
    text = as_text(make_records())
    args = ["--time", "ts", *options]
    changes = "changes" in options
    outputs = {}
    for chunk, pause in ((len(text), 0), (1, 0.002), (7, 0.002), (1000, 0.05)):
        result = tail_chunked(args, text, chunk, pause)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        if changes:  # updates follow the batches; each window's final lines do not
            out = b"".join(line + b"\n" for line in out.splitlines() if b'"final":true' in line)
        outputs[chunk] = (out, result.stderr)
    assert len({out for out, _ in outputs.values()}) == 1, {c: len(o) for c, (o, _) in outputs.items()}
    assert len({err for _, err in outputs.values()}) == 1  # the same late count, too
    assert outputs[1][0].count(b"\n") > 10


def test_window_counts_equal_sqlite_group_by_over_the_whole_file(tmp_path):
    records = make_records(disorder=2.0)
    path = tmp_path / "events.jsonl"
    path.write_text(as_text(records))
    result = run_cli(
        "tail",
        "-",
        "--time",
        "ts",
        "--grace",
        "3s",
        "--window",
        "tumble 1s",
        "--sql",
        COUNT_SQL,
        input=path.read_text(),
    )
    assert result.returncode == 0, result.stderr
    assert "late" not in result.stderr  # the grace covers the disorder
    got = sorted(
        (r["window_start"], r["window_end"], r["status"], r["n"]) for r in map(json.loads, result.stdout.splitlines())
    )
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (line TEXT)")
    db.executemany("INSERT INTO t VALUES (?)", [(line,) for line in path.read_text().splitlines()])
    truth = db.execute(
        """SELECT CAST(round(line ->> 'ts' * 1000) AS INTEGER) / 1000 AS ws, status, count(*)
           FROM (SELECT line, line ->> 'status' AS status FROM t) GROUP BY ws, status ORDER BY ws, status"""
    ).fetchall()
    assert got == sorted((ws, ws + 1, status, n) for ws, status, n in truth)
    assert sum(n for *_, n in got) == len(records)


def test_a_count_that_names_no_column_reads_the_stream():
    """`SELECT count(*) FROM stream` reads no column of the view: it still reads the records."""
    text = as_text([{"ts": 1.0}, {"ts": 2.0}, {"ts": 61.0}])
    sql = "SELECT count(*) AS n FROM stream"
    result = run_cli("tail", "-", "--time", "ts", "--window", "tumble 1m", "--sql", sql, input=text)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["n"] for line in result.stdout.splitlines()] == [2, 1]
    result = run_cli("tail", "-", "--sql", "SELECT 1 AS one", input=text)
    assert result.returncode == 2 and "must read the table stream" in result.stderr


def test_late_and_timeless_records_are_counted_never_silent():
    records = [{"ts": 100.0, "status": 200}, {"ts": 130.5, "status": 200}, {"ts": 110.0, "status": 500}]
    text = (
        as_text(records)
        + '{"status": 404}\n{"ts": "not a time", "status": 404}\n{"ts": "1970-01-01T00:02:20Z", "status": 1}\n'
    )
    result = run_cli("tail", "-", "--time", "ts", "--window", "tumble 10s", "--sql", COUNT_SQL, input=text)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["window_start"], r["status"], r["n"]) for r in rows] == [(100, 200, 1), (130, 200, 1), (140, 1, 1)]
    assert "1 late record(s)" in result.stderr
    assert "skipped 2 record(s) without a usable time field 'ts'" in result.stderr


def test_end_of_input_emits_the_open_window_and_count_stops_early():
    text = as_text([{"ts": 5.0, "status": 200}, {"ts": 6.0, "status": 200}])
    result = run_cli("tail", "-", "--time", "ts", "--window", "tumble 1m", "--sql", COUNT_SQL, input=text)
    assert json.loads(result.stdout) == {"status": 200, "n": 2, "window_start": 0, "window_end": 60}
    many = as_text([{"ts": float(t), "status": 200} for t in range(0, 600, 10)])
    result = run_cli(
        "tail", "-", "--time", "ts", "--window", "tumble 1m", "--count", "2", "--sql", COUNT_SQL, input=many
    )
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2


def test_dedup_and_limit_on_the_command_line():
    text = as_text([{"user": u, "port": p} for u, p in [("a", 22), ("b", 22), ("a", 80), ("c", 443), ("d", 8080)]])
    result = run_cli("tail", "-", "--dedup", "port", "--sql", "SELECT user, port FROM stream", input=text)
    assert [json.loads(line)["user"] for line in result.stdout.splitlines()] == ["a", "a", "c", "d"]
    result = run_cli("tail", "-", "--limit", "2/1h", "--sql", "SELECT user FROM stream", input=text)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[:2] == [{"user": "a"}, {"user": "b"}]
    assert lines[2]["action"] == "suppressed" and lines[2]["suppressed"] == 3 and len(lines) == 3


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--window", "sliding 1m", "--sql", COUNT_SQL], "unknown window"),
        (["--window", "tumble 0s", "--sql", COUNT_SQL], "above zero"),
        (["--window", "tumble -1m", "--sql", COUNT_SQL], "negative"),
        (["--window", "hop 1m every 2m", "--sql", COUNT_SQL], "slide is larger"),
        (["--window-key", "user", "--window", "tumble 1m", "--sql", COUNT_SQL], "--window-key goes with a session"),
        (["--dedup", "nope", "--sql", "SELECT user FROM stream"], "does not return"),
        (["--sql", COUNT_SQL], "--window"),
        (["--sql", "SELECT DISTINCT user FROM stream"], "DISTINCT"),
        (["--sql", "SELECT user FROM stream ORDER BY user"], "ORDER BY"),
        (["--sql", "SELECT user FROM stream LIMIT 3"], "LIMIT"),
        (["--window", "tumble 1m"], "--sql"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, words):
    result = run_cli("tail", "-", *args, input='{"user": "a"}\n')
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_help_examples_over_stdin_run():
    """Every `streamq tail - ...` example in `streamq tail --help` runs as written."""
    text = run_cli("tail", "--help").stdout.replace("\\\n", " ")
    examples = [
        shlex.split(line.split("streamq tail", 1)[1]) for line in text.splitlines() if "streamq tail - " in line
    ]
    assert len(examples) >= 2
    records = as_text([{"ts": 5.0, "status": 200, "user": "a"}, {"ts": 70.0, "status": 500, "user": "b"}])
    for args in examples:
        result = run_cli("tail", *args, input=records)
        assert result.returncode == 0 and result.stdout, (args, result.stderr)


def test_the_time_field_is_the_column_time():
    """--time FIELD makes the record's event time the column `time` (unix seconds), as a source's
    `time = "FIELD"` does; without --time, `time` is just a record key."""
    text = '{"ts": "2024-01-01T00:00:10Z", "s": 1}\n{"ts": 1704067270.25, "s": 2, "time": "mine"}\n'
    result = run_cli("tail", "-", "--time", "ts", "--sql", "SELECT s, time FROM stream", input=text)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"s": 1, "time": 1704067210.0},
        {"s": 2, "time": 1704067270.25},
    ]
    result = run_cli("tail", "-", "--sql", "SELECT s, time FROM stream", input=text)
    assert [json.loads(line)["time"] for line in result.stdout.splitlines()] == [None, "mine"]


def test_select_star_names_the_record_keys():
    """`SELECT *` (the example tail's own error message gives) once failed with a TypeError, or
    printed values under the names of the view before the first record's keys were added."""
    text = '{"a": 1, "ts": 5}\n{"a": 2, "ts": 6}\n'
    result = run_cli("tail", "-", "--sql", "SELECT *, 1 AS one FROM stream", input=text)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["a"], r["ts"], r["one"]) for r in rows] == [(1, 5, 1), (2, 6, 1)]
    result = run_cli("tail", "-", "--time", "ts", "--window", "tumble 1m", "--sql", "SELECT * FROM stream", input=text)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["a"] for line in result.stdout.splitlines()] == [1, 2]
