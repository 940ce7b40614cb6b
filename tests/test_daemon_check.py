"""`streamq run --check` proves `run`: what it refuses, `run` refuses with the same words; when it
says ok, `run` starts and no query fails at preparation.

Each config is checked with `run --check`, then started with `run` as a real process in its own
tmp dir (state file, control socket); a started daemon is asked through its control socket.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_process import terminate

import streamq
from conftest import retry, run_cli

BASE = """
[state]
path = "{root}/state.db"
[control]
path = "{root}/control.sock"
[sinks.out]
type = "file"
path = "{root}/out.jsonl"
"""


def write(root: Path, extra: str) -> Path:
    path = root / "streamq.toml"
    path.write_text(BASE.format(root=root) + extra)
    return path


def query(sql: str) -> str:
    return f"[queries.q]\nsql = {json.dumps(sql)}\ninterval = 60\n"


def run_daemon(config: Path, timeout: float = 20) -> subprocess.Popen:
    stderr = config.parent / "stderr.txt"
    with open(stderr, "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "streamq", "run", "-c", str(config)],
            cwd=config.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


REFUSED = [
    ("mqtt url", '[sinks.m]\ntype = "mqtt"\nurl = "http://x"\n', "sinks.m.url: 'http://x': expected mqtt://"),
    ("NUL", query("SELECT 1 AS x\x00"), "queries.q.sql: the SQL holds a NUL character"),
    ("unknown table", query("select * from proceses"), "queries.q.sql: no such table: proceses"),
    ("no constraint", query("select * from file"), "queries.q.sql: table file needs a constraint on path or"),
    ("a write", query("delete from processes"), "queries.q.sql: not allowed on the read-only connection: DELETE"),
    ("whitespace", query("  \n\t "), "queries.q.sql: the SQL is empty (only whitespace or comments)"),
    ("two statements", query("select 1 as a; select 2 as b"), "queries.q.sql: one statement per query, found 2"),
    ("reindex", query("REINDEX"), "queries.q.sql: not allowed on the read-only connection: REINDEX"),
    ("label", query("select 1") + '[labels.web]\nsql = "select nosuch from processes"\n', "labels.web.sql: no such"),
    ("decorator", query("select 1") + '[decorators]\nalways = ["select x from y"]\n', "decorators.always: no such"),
    ("sink dir", '[sinks.bad]\ntype = "file"\npath = "{root}/streamq.toml/x.jsonl"\n', "is not a directory"),
]


@pytest.mark.parametrize(("extra", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_check_refuses_what_run_refuses_with_the_same_message(tmp_path, extra, message):
    config = write(tmp_path, extra.replace("{root}", str(tmp_path)))
    checked = run_cli("run", "-c", str(config), "--check")
    assert checked.returncode == 2, checked.stdout
    assert message in checked.stderr and checked.stderr.startswith("streamq: error: ")
    assert "Traceback" not in checked.stderr
    proc = run_daemon(config)
    assert proc.wait(20) == 2  # refused at start: no daemon dying later, no state file left
    stderr = (tmp_path / "stderr.txt").read_text()
    assert message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "state.db").exists()


def test_ok_means_run_starts_and_every_query_prepares(tmp_path):
    extra = (
        query("SELECT pid, name FROM processes WHERE pid = 1")
        + "[queries.files]\nsql = \"SELECT path FROM file WHERE directory = '/etc'\"\ninterval = 60\n"
        + '[queries.events]\nsql = "SELECT count(*) AS n FROM process_events"\ninterval = 60\n[sources.process]\n'
    )
    config = write(tmp_path, extra)
    checked = run_cli("run", "-c", str(config), "--check")
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
    assert checked.stdout == f"{config}: ok (3 queries, 1 sink)\n"
    proc = run_daemon(config)
    try:
        assert retry(lambda: (tmp_path / "control.sock").exists() or proc.poll() is not None, timeout=20)
        assert proc.poll() is None

        def schedule():
            with streamq.Client(str(tmp_path / "control.sock"), timeout=20) as client:
                return client.query("SELECT name, executions, errors, last_error FROM streamq_schedule")

        def all_ran():
            rows = schedule()
            return rows if rows and all(r["executions"] for r in rows) else None

        rows = retry(all_ran, timeout=10)
        assert sorted(r["name"] for r in rows) == ["events", "files", "q"]
        assert all(r["errors"] == 0 and r["last_error"] is None for r in rows), rows
    finally:
        assert terminate(proc) == 0
    assert "running 3 queries as" in (tmp_path / "stderr.txt").read_text()


def test_a_missing_watch_path_is_a_warning_from_check_and_at_start(tmp_path):
    extra = f'[sources.file]\npaths = ["{tmp_path}/not-yet/%%"]\n'
    extra += "[queries.w]\nsql = \"SELECT * FROM file_events\"\non = ['file_events']\nmode = 'stream'\n"
    config = write(tmp_path, extra)
    warning = f"sources.file: watch path '{tmp_path}/not-yet/%%': {tmp_path}/not-yet does not exist (yet)"
    checked = run_cli("run", "-c", str(config), "--check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == f"streamq: warning: {warning}; watched once it appears\n"
    proc = run_daemon(config)
    try:
        assert retry(lambda: "running 1 query" in (tmp_path / "stderr.txt").read_text(), timeout=20)
        assert warning in (tmp_path / "stderr.txt").read_text()
    finally:
        terminate(proc)


def test_a_pack_query_on_a_table_this_host_lacks_is_skipped_by_both(tmp_path):
    pack = {"queries": {"good": {"query": "SELECT 1 AS one", "interval": 60}, "mac": {"query": "SELECT * FROM plist"}}}
    (tmp_path / "p.conf").write_text(json.dumps(pack))
    config = write(tmp_path, f'[packs]\npaths = ["{tmp_path}/p.conf"]\n')
    checked = run_cli("run", "-c", str(config), "--check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == "streamq: warning: pack query pack_p_mac skipped: no such table: plist\n"
    assert checked.stdout == f"{config}: ok (1 query, 1 sink)\n"
    proc = run_daemon(config)
    try:
        assert retry(lambda: "running 1 query as" in (tmp_path / "stderr.txt").read_text(), timeout=20)
        assert "pack query pack_p_mac skipped: no such table: plist" in (tmp_path / "stderr.txt").read_text()
    finally:
        assert terminate(proc) == 0
