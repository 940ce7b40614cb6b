"""`streamq tail`: JSON lines from stdin or a followed file, optionally through SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from conftest import ROOT, retry, run_cli

LINES = (
    '{"user": "ann", "status": 200, "path": "/"}\n'
    '{"user": "bob", "status": 503, "path": "/api", "extra": {"k": [1, 2]}}\n'
    "this is not json\n"
    '{"user": "cyd", "status": 500, "late": true}\n'
)


def _rows(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def test_stdin_through_sql():
    result = run_cli("tail", "-", "--sql", "SELECT user, path FROM stream WHERE status >= 500", input=LINES)
    assert result.returncode == 0, result.stderr
    assert _rows(result.stdout) == [{"user": "bob", "path": "/api"}, {"user": "cyd", "path": None}]
    assert "skipped 1 record" in result.stderr and "malformed JSON" in result.stderr


def test_stdin_without_sql_prints_every_record_as_given():
    result = run_cli("tail", "-", input=LINES)
    assert result.returncode == 0, result.stderr
    good = [line for line in LINES.splitlines() if line.startswith("{")]
    assert result.stdout.splitlines() == good


def test_columns_come_from_the_first_record_and_the_sql():
    # "late" is not in the first record, but the SQL names it; "extra" is an object: JSON text.
    sql = "SELECT user, late, extra, json_extract(raw, '$.extra.k[1]') AS k, typeof(status) AS t FROM stream"
    result = run_cli("tail", "-", "--sql", sql, input=LINES)
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert [r["user"] for r in rows] == ["ann", "bob", "cyd"]
    assert [r["late"] for r in rows] == [None, None, 1]
    assert json.loads(rows[1]["extra"]) == {"k": [1, 2]} and rows[1]["k"] == 2
    assert {r["t"] for r in rows} == {"integer"}  # untyped columns keep JSON's types


def test_count_stops_early_and_a_final_line_without_newline_counts():
    result = run_cli("tail", "-", "--count", "1", input=LINES)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1
    result = run_cli("tail", "-", input='{"a": 1}\n{"a": 2}')
    assert _rows(result.stdout) == [{"a": 1}, {"a": 2}]


def test_errors_have_exit_codes_and_one_line():
    cases = [
        (("tail", "/nonexistent/streamq.jsonl"), 1, "No such file"),
        (("tail", "-", "--sql", "SELEC user"), 1, "syntax error"),
        (("tail", "-", "--sql", "DELETE FROM stream"), 1, "only read"),
        (("tail", "-", "--sql", "SELECT 1"), 2, "stream"),
        (("tail", "-", "--count", "0"), 2, "positive"),
        (("tail", "mqtt://127.0.0.1:notaport/x"), 2, "port"),
    ]
    for args, code, words in cases:
        result = run_cli(*args, input="{}\n")
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        if code == 1:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_states_where_a_file_starts():
    result = run_cli("tail", "--help")
    assert result.returncode == 0
    assert "from its start" in result.stdout and "--from-end" in result.stdout


class Tail:
    """`streamq tail FILE` as a child process, its output read line by line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamq", "tail", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        self.out: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.out.append(line.rstrip("\n"))

    def lines(self):
        return list(self.out)

    def wait_lines(self, n, timeout=10):
        return retry(lambda: len(self.lines()) >= n and self.lines(), timeout=timeout) or self.lines()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        self.reader.join(5)


def _write(path, numbers, mode="a"):
    with open(path, mode) as f:
        f.write("".join(json.dumps({"n": n}) + "\n" for n in numbers))


def test_file_from_start_then_through_rotation_and_truncation(tmp_path):
    log = tmp_path / "app.jsonl"
    _write(log, [1, 2], "w")
    tail = Tail(str(log), "--sql", "SELECT n FROM stream", "--timeout", "20")
    try:
        assert len(tail.wait_lines(2)) == 2  # what the file held already: from its start
        _write(log, [3])
        assert len(tail.wait_lines(3)) == 3
        os.rename(log, tmp_path / "app.jsonl.1")
        _write(tmp_path / "app.jsonl.1", [4])  # the writer has not reopened yet
        time.sleep(0.3)
        _write(log, [5], "w")  # rotation done: a new file at the path
        assert len(tail.wait_lines(5)) == 5
        os.truncate(log, 0)
        time.sleep(0.3)
        _write(log, [6])
        lines = tail.wait_lines(6)
        assert [json.loads(line)["n"] for line in lines] == [1, 2, 3, 4, 5, 6]
    finally:
        tail.close()


def test_from_end_skips_what_the_file_holds(tmp_path):
    log = tmp_path / "app.jsonl"
    _write(log, [1, 2], "w")
    tail = Tail(str(log), "--from-end", "--count", "1", "--timeout", "20")
    try:
        n = 3
        while tail.proc.poll() is None and n < 100:  # until it has opened the file and seen one new line
            _write(log, [n])
            n += 1
            time.sleep(0.2)
        assert tail.proc.wait(15) == 0
        tail.reader.join(5)
        assert len(tail.lines()) == 1 and json.loads(tail.lines()[0])["n"] >= 3
    finally:
        tail.close()


def test_timeout_ends_a_quiet_tail(tmp_path):
    log = tmp_path / "quiet.jsonl"
    log.write_text("")
    start = time.monotonic()
    result = run_cli("tail", str(log), "--timeout", "0.5")
    assert result.returncode == 0 and result.stdout == ""
    assert 0.5 <= time.monotonic() - start < 10
