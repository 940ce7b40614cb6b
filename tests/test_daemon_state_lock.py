"""One daemon per state file: a second `streamq run` on the same state is refused before it
starts a sink (two would deliver the same outbox rows twice), and a daemon killed with -9
leaves no lock behind that blocks its restart.
"""

from __future__ import annotations

import signal

from daemon_process import terminate
from test_daemon_check import query, run_daemon, write

from conftest import retry, run_cli


def started(tmp_path, proc) -> bool:
    text = (tmp_path / "stderr.txt").read_text()
    assert proc.poll() is None, text
    return "running 1 query" in text


def test_a_second_daemon_on_the_same_state_file_is_refused(tmp_path):
    config = write(tmp_path, query("SELECT 1 AS one"))
    first = run_daemon(config)
    try:
        assert retry(lambda: started(tmp_path, first), timeout=20)
        second = run_cli("run", "-c", str(config), timeout=30)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.splitlines()
        assert len(lines) == 1, second.stderr
        assert f"another streamq daemon uses this state file (pid {first.pid})" in lines[0]
        assert "Traceback" not in second.stderr
        # The first daemon is untouched: still running, still answering.
        assert first.poll() is None
    finally:
        assert terminate(first) == 0


def test_a_daemon_killed_with_sigkill_can_be_restarted_on_its_state(tmp_path):
    config = write(tmp_path, query("SELECT 1 AS one"))
    first = run_daemon(config)
    try:
        assert retry(lambda: started(tmp_path, first), timeout=20)
    finally:
        terminate(first, signal.SIGKILL)
    assert (tmp_path / "state.db.lock").exists()  # left behind, and held by nobody
    again = run_daemon(config)
    try:
        assert retry(lambda: started(tmp_path, again), timeout=20)
    finally:
        assert terminate(again) == 0
