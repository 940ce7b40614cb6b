"""Incomplete answers say so: not root, one note per command naming the tables read whose rows
are incomplete; --follow says when a source polls and what that costs; the daemon logs each
source's mode at start and a line at stop.

The non-root runs are the CLI as uid 65534 (nobody), with an interpreter that user may run.
"""

from __future__ import annotations

import signal
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, is_root, retry, run_cli

NOBODY = 65534


def _interpreter_for_nobody() -> str | None:
    """An interpreter of this version that uid 65534 can run (this venv's may sit under /root)."""
    for python in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"):
        try:
            probe = subprocess.run(
                [python, "-c", "import sys; print(sys.version_info[:2])"],
                user=NOBODY,
                group=NOBODY,
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(sys.version_info[:2])):
            return python
    return None


PYTHON = _interpreter_for_nobody() if is_root else None
needs_nobody = pytest.mark.skipif(
    PYTHON is None, reason="needs root, and an interpreter of this Python version that uid 65534 may run"
)


def as_nobody(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": ":".join([str(ROOT), *site.getsitepackages()]), "PATH": "/usr/bin:/bin", "HOME": "/"}
    return subprocess.run(
        [PYTHON, "-m", "streamq", *args],
        user=NOBODY,
        group=NOBODY,
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@needs_nobody
def test_not_root_gets_one_note_naming_the_incomplete_tables():
    result = as_nobody("query", "--json", "SELECT count(*) AS n FROM shadow; SELECT pid, path FROM processes")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("streamq: note:")]
    assert len(notes) == 1, result.stderr
    assert "not running as root" in notes[0]
    assert "shadow: /etc/shadow is root's only: no rows" in notes[0]
    assert "processes: other users' processes lack path" in notes[0]


@needs_nobody
def test_follow_as_not_root_notes_the_event_tables_it_cannot_fill():
    # Without root the exe and cwd links of other users' processes cannot be read: exec rows
    # come without path, socket rows without their process (seen as uid 65534).
    result = as_nobody("query", "--follow", "--timeout", "1", "SELECT pid, path FROM process_events")
    assert result.returncode == 0, result.stderr
    assert "process_events: other users' processes lack path and cwd" in result.stderr
    result = as_nobody("query", "--follow", "--timeout", "1", "SELECT pid, path FROM socket_events")
    assert result.returncode == 0, result.stderr
    assert "socket_events: sockets of other users' processes have no pid or path" in result.stderr


@needs_nobody
def test_the_shell_as_not_root_notes_each_incomplete_table_once():
    env = {"PYTHONPATH": ":".join([str(ROOT), *site.getsitepackages()]), "PATH": "/usr/bin:/bin", "HOME": "/"}
    result = subprocess.run(
        [PYTHON, "-m", "streamq", "shell"],
        input="SELECT count(*) FROM shadow;\nSELECT count(*) FROM shadow;\nSELECT * FROM uptime;\n",
        user=NOBODY,
        group=NOBODY,
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "streamq: note: not running as root, so some rows are incomplete (shadow: /etc/shadow is root's only: no rows)\n"
    )


@needs_nobody
def test_a_complete_answer_has_no_note():
    result = as_nobody("query", "SELECT * FROM uptime")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_follow_says_the_source_polls_and_what_that_costs(tmp_path):
    # Polling is the fallback without the proc connector; mode = "poll" takes it here on purpose.
    (tmp_path / "poll.toml").write_text('[sources.process]\nmode = "poll"\n')
    result = run_cli(
        "query", "-c", str(tmp_path / "poll.toml"), "--follow", "--timeout", "2", "SELECT pid FROM process_events"
    )
    assert result.returncode == 0, result.stderr
    assert "streamq: note: process_events: polling /proc (mode = poll)" in result.stderr
    assert "a process that lives less than the poll interval is missed" in result.stderr
    assert result.stderr.count("process_events: polling") == 1


@pytest.mark.skipif(not is_root, reason="the proc connector needs root")
def test_the_daemon_logs_each_sources_mode_at_start_and_a_line_at_stop():
    root = Path(tempfile.mkdtemp(prefix="sqnote"))
    (root / "streamq.toml").write_text(
        f'[state]\npath = "{root}/state.db"\n[control]\nenabled = false\n[sources.process]\n'
        f'[sinks.out]\ntype = "file"\npath = "{root}/out.jsonl"\n'
        "[queries.execs]\nsql = \"SELECT pid FROM process_events\"\non = ['process_events']\nmode = 'stream'\n"
    )
    stderr = root / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamq", "run", "-c", str(root / "streamq.toml")],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        assert retry(lambda: "source process fills process_events: netlink" in stderr.read_text(), timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert "source process stopped: process_events:" in stderr.read_text()
    assert " events seen, 0 dropped" in stderr.read_text()
