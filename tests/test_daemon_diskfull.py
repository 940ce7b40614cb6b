"""A full disk loses nothing: the state store on a real 2 MB tmpfs, filled while 50,000 rows arrive.

While the disk is full the rows wait in their ring, the error shows in streamq_schedule
and streamq_sinks and is logged once; when space returns every row reaches the file
sink exactly once, in order, in pieces that fit the small filesystem.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from daemon_process import Daemon

from conftest import is_root, retry
from streamq.client import Client

N = 50_000
PAD = "x" * 150  # about 200 bytes a line


@pytest.fixture
def tmpfs(tmp_path):
    if not is_root:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory) -> int:
    """Write a file until the filesystem is full; return its size."""
    size = 0
    with open(directory / "filler", "wb", buffering=0) as f:
        for block in (65536, 512):
            try:
                while True:
                    size += f.write(b"\0" * block)
            except OSError:
                pass
    return size


def lines(numbers) -> str:
    return "".join(json.dumps({"i": i, "pad": PAD}) + "\n" for i in numbers)


def test_a_full_state_disk_delays_rows_but_loses_none(tmp_path, tmpfs):
    log = tmp_path / "app.jsonl"
    log.write_text("")
    config = f"""
[state]
path = "{tmpfs}/state.db"
[control]
path = "control.sock"
[sinks.out]
type = "file"
path = "out.jsonl"
rotate_bytes = 0
[sources.jsonl.app]
path = "{log}"
checkpoint = "{tmpfs}/app.ckpt"
poll_interval = "50ms"
[queries.rows]
sql = "SELECT i FROM app_events"
mode = "stream"
"""
    d = Daemon(tmp_path, config)
    try:
        d.start()
        with open(log, "a") as f:
            f.write(lines(range(100)))
        assert retry(lambda: len(d.of("rows")) == 100, timeout=20), d.stderr()
        fill(tmpfs)
        with open(log, "a") as f:
            f.write(lines(range(100, N)))
        assert retry(lambda: "disk is full" in d.stderr(), timeout=20), d.stderr()
        with Client(str(tmp_path / "control.sock")) as client:
            schedule = client.query("SELECT last_error FROM streamq_schedule WHERE name = 'rows'")
            sinks = client.query("SELECT last_error FROM streamq_sinks WHERE name = 'out'")

            def buffered() -> int:
                return client.query("SELECT buffered FROM streamq_events WHERE name = 'app_events'")[0]["buffered"]

            assert retry(lambda: buffered() >= N - 100, timeout=20), buffered()  # the rows wait in the ring
        assert "full" in schedule[0]["last_error"] and "full" in sinks[0]["last_error"]
        errors = [line for line in d.stderr().splitlines() if "disk is full" in line]
        assert len(errors) == 1, errors  # one clear line, not one per run
        os.unlink(tmpfs / "filler")
        with open(log, "a") as f:
            f.write(lines(range(N, N + 10)))
        assert retry(lambda: len(d.of("rows")) >= N + 10, timeout=180), (len(d.of("rows")), d.stderr())
        code, _ = d.stop()
        assert code == 0
    finally:
        d.kill()
    got = [line["columns"]["i"] for line in d.of("rows")]
    print(f"disk full: appended {N + 10}, delivered {len(got)}, duplicated {len(got) - len(set(got))}")
    assert got == list(range(N + 10))  # every row once, in order
