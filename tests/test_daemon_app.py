"""`streamq run` as a process: result lines, event-triggered diffs, restarts after kill -9,
failing and overrunning queries, signals, reload, rotation under load, packs, the default config.

Each daemon runs as `python -m streamq run -c <cfg>` in its own tmp dir with its own state file
and is stopped in a finalizer. Waits are bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import apsw
import pytest
from daemon_process import SINK
from mqtt_broker import mosquitto, unique_topic  # noqa: F401  (the fixture)
from test_daemon_results import EVENT_KEYS  # osquery's event-line keys, in order

from conftest import retry


def files_query(name: str, directory: Path, interval: str = "0.2s", extra: str = "") -> str:
    return f"""
[queries.{name}]
sql = "SELECT path FROM file WHERE directory = '{directory}'"
interval = "{interval}"
{extra}
"""


def runs_committed(path: Path, query: str) -> int:
    """The query's counter in the state store: how many runs it has committed."""
    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        found = db.execute("SELECT counter FROM queries WHERE name = ?", (query,)).fetchall()
        return found[0][0] if found else 0
    finally:
        db.close()


def outbox_rows(path: Path) -> int:
    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return db.execute("SELECT count(*) FROM outbox").fetchall()[0][0]
    finally:
        db.close()


# -- result lines --------------------------------------------------------------------------------


def test_result_lines_in_osquery_format(tmp_path, daemon):
    watched = tmp_path / "watched"
    watched.mkdir()
    for name in ("a", "b"):
        (watched / name).write_text(name)
    d = daemon(
        SINK
        + f"""
[host]
identifier = "test-host"
[schedule]
epoch = 42
[decorators]
load = ["SELECT 'loaded' AS deco_load"]
always = ["SELECT 'always' AS deco_always"]
[queries.typed]
sql = "SELECT path, size, NULL AS missing FROM file WHERE directory = '{watched}'"
interval = "0.2s"
[queries.text]
sql = "SELECT path, size, NULL AS missing FROM file WHERE directory = '{watched}'"
interval = "0.2s"
numerics = false
[queries.batched]
sql = "SELECT path FROM file WHERE directory = '{watched}'"
interval = "0.2s"
format = "batch"
[queries.snap]
sql = "SELECT count(*) AS n FROM file WHERE directory = '{watched}'"
interval = "0.2s"
mode = "snapshot"
"""
    ).start()
    assert retry(lambda: len(d.of("typed")) == 2 and len(d.of("text")) == 2 and d.of("batched"), timeout=5)
    (watched / "a").unlink()
    (watched / "c").write_text("c")
    assert retry(lambda: len(d.of("typed")) == 4 and len(d.of("text")) == 4 and len(d.of("batched")) == 2, timeout=5)
    typed = d.of("typed")
    for item in typed:
        assert list(item) == EVENT_KEYS
        assert item["hostIdentifier"] == "test-host" and item["epoch"] == 42 and item["numerics"] is True
        assert item["decorations"] == {"deco_load": "loaded", "deco_always": "always"}
    baseline, change = typed[:2], typed[2:]
    assert {i["counter"] for i in baseline} == {0} and {i["action"] for i in baseline} == {"added"}
    assert {i["columns"]["path"] for i in baseline} == {str(watched / "a"), str(watched / "b")}
    assert baseline[0]["columns"]["size"] == 1 and baseline[0]["columns"]["missing"] is None
    # One run saw a vanish and c appear: removed first, then added, with one counter above 0.
    assert [(i["action"], i["columns"]["path"]) for i in change] == [
        ("removed", str(watched / "a")),
        ("added", str(watched / "c")),
    ]
    assert change[0]["counter"] == change[1]["counter"] > 0
    # Stable ids: host, query, epoch, counter and the row's index in its run.
    assert [i["id"] for i in change] == [f"test-host:typed:42:{change[0]['counter']}:{n}" for n in (0, 1)]
    assert len({i["id"] for i in typed}) == len(typed)
    assert change[0]["unixTime"] == change[1]["unixTime"] >= baseline[0]["unixTime"]
    text = d.of("text")
    assert all(i["numerics"] is False for i in text)
    assert text[0]["columns"]["size"] == "1" and text[0]["columns"]["missing"] == ""
    assert all(isinstance(v, str) for i in text for v in i["columns"].values())
    first, second = d.of("batched")[:2]
    assert list(first)[:2] == ["diffResults", "name"] and "action" not in first
    assert len(first["diffResults"]["added"]) == 2 and first["diffResults"]["removed"] == []
    assert second["diffResults"] == {"added": [{"path": str(watched / "c")}], "removed": [{"path": str(watched / "a")}]}
    assert first["counter"] == 0 < second["counter"]
    assert first["id"] == "test-host:batched:42:0:0"
    snaps = d.of("snap")
    assert snaps[0]["action"] == "snapshot" and snaps[0]["snapshot"] == [{"n": 2}] and snaps[0]["counter"] == 0
    counters = [s["counter"] for s in snaps]
    assert counters == list(range(len(counters)))  # every run, numbered from 0 without a gap
    assert d.stop() == (0, pytest.approx(0, abs=5))


def test_new_listener_on_any_address_is_added_then_removed(tmp_path, daemon):
    d = daemon(
        SINK
        + """
[sources.socket]
interval = "100ms"
[queries.new_listening_ports]
sql = '''
SELECT DISTINCT process.name, listening.port, process.pid
FROM processes AS process JOIN listening_ports AS listening ON process.pid = listening.pid
WHERE listening.address = '0.0.0.0'
'''
on = ["socket_events"]
interval = "1s"
"""
    ).start()
    # The baseline run first, so the listener is a change rather than part of the baseline.
    assert retry(lambda: runs_committed(tmp_path / "state.db", "new_listening_ports") >= 1, timeout=3)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen()
    port = server.getsockname()[1]
    opened = time.monotonic()

    def seen(action):
        return [
            i
            for i in d.of("new_listening_ports")
            if i["columns"]["port"] == port and i["columns"]["pid"] == os.getpid() and i["action"] == action
        ]

    try:
        assert retry(lambda: seen("added"), timeout=3), d.lines()
        assert time.monotonic() - opened < 3
    finally:
        server.close()
    closed = time.monotonic()
    assert retry(lambda: seen("removed"), timeout=3)
    assert time.monotonic() - closed < 3
    assert len(seen("added")) == 1 and seen("added")[0]["counter"] > 0


# -- crash safety ----------------------------------------------------------------------------------


def test_restart_after_kill_neither_loses_nor_resends(tmp_path, daemon):
    watched = tmp_path / "watched"
    watched.mkdir()
    d = daemon(SINK + files_query("files", watched, "0.1s")).start()
    created: list[str] = []
    stop = threading.Event()

    def make_files():
        i = 0
        while not stop.is_set():
            path = watched / f"f{i:05d}"
            path.write_text("x")
            created.append(str(path))
            i += 1
            time.sleep(0.01)

    maker = threading.Thread(target=make_files)
    maker.start()
    try:
        for _ in range(2):  # kill -9 twice while results flow, restarting with the same state
            assert retry(lambda: len(d.of("files")) > len(created) // 2 > 10, timeout=5)
            d.kill()
            d.start()
    finally:
        stop.set()
        maker.join()
    assert retry(lambda: len(d.of("files")) >= len(created), timeout=5)
    time.sleep(0.3)  # one more run: a duplicate would show up now
    assert d.stop()[0] == 0
    added = [i["columns"]["path"] for i in d.of("files") if i["action"] == "added"]
    assert sorted(added) == sorted(created), "each file exactly once across the kills"
    assert not [i for i in d.of("files") if i["action"] == "removed"]
    assert outbox_rows(tmp_path / "state.db") == 0


# -- failing and overrunning queries ---------------------------------------------------------------


def test_broken_and_overrunning_queries_do_not_stop_the_others(tmp_path, daemon):
    d = daemon(
        SINK
        + """
[schedule]
denylist_after = 2
[queries.broken]
sql = "SELECT json('{') AS bad"
interval = "0.2s"
[queries.slow]
sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c"
interval = "0.2s"
deadline = "200ms"
[queries.ticks]
sql = "SELECT 1 AS one"
interval = "0.2s"
mode = "snapshot"
[queries.schedule]
sql = "SELECT name, executions, errors, last_error, denylisted FROM streamq_schedule"
interval = "0.3s"
mode = "snapshot"
"""
    ).start()

    def status():
        snaps = d.of("schedule")
        return {row["name"]: row for row in snaps[-1]["snapshot"]} if snaps else {}

    assert retry(lambda: status().get("slow", {}).get("denylisted") == 1, timeout=6), status()
    slow = status()["slow"]
    assert slow["errors"] == 2 and "deadline" in slow["last_error"] and slow["executions"] == 0
    # The one SQL thread ran slow twice meanwhile: broken's second run may still be due.
    assert retry(lambda: status()["broken"]["errors"] >= 2, timeout=6), status()
    assert "malformed JSON" in status()["broken"]["last_error"]
    assert status()["ticks"]["errors"] == 0
    ticks_then = len(d.of("ticks"))
    assert retry(lambda: len(d.of("ticks")) >= ticks_then + 4, timeout=3), "ticks stopped after the denylisting"
    err = d.stderr()
    assert "query slow: over its deadline 2 times in a row, denylisted" in err
    assert err.count("query broken failed: malformed JSON") == 1, "a repeated failure is logged once"
    assert d.stop()[0] == 0


# -- signals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_0_fast_with_everything_flushed(tmp_path, daemon, sig):
    watched = tmp_path / "watched"
    watched.mkdir()
    for i in range(300):
        (watched / f"f{i:03d}").write_text("x")
    go = tmp_path / "go"
    d = daemon(
        SINK
        + files_query("files", watched, "0.1s")
        + f"""
[queries.long]
# Counts to 1e9 (minutes) once the file `go` exists; until then it is empty and instant.
sql = "WITH RECURSIVE c(x) AS (SELECT 1 WHERE EXISTS (SELECT 1 FROM file WHERE path = '{go}') UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) AS n FROM c"
interval = "0.1s"
deadline = "60s"
"""
    ).start()
    assert retry(lambda: len(d.of("files")) >= 300, timeout=5)
    go.write_text("go")
    time.sleep(0.4)  # the long query now holds the SQL thread: the stop must interrupt it
    for i in range(300, 400):
        (watched / f"f{i:03d}").write_text("x")
    code, took = d.stop(sig)
    assert code == 0 and took < 5, (code, took, d.stderr())
    assert outbox_rows(tmp_path / "state.db") == 0, "results left undelivered"
    paths = [i["columns"]["path"] for i in d.of("files")]
    assert sorted(paths) == [str(watched / f"f{i:03d}") for i in range(300)]
    assert [i["columns"] for i in d.of("long")] == [{"n": 0}], "the interrupted run wrote nothing"
    assert "Traceback" not in d.stderr() and "long failed" not in d.stderr()


def test_sighup_reload_keeps_unchanged_queries_and_starts_new_ones(tmp_path, daemon):
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "a").write_text("a")
    tick = '\n[queries.tick]\nsql = "SELECT 1 AS one"\nmode = "snapshot"\ninterval = "{}"\n'
    config = SINK + files_query("files", watched) + tick.format("0.3s")
    d = daemon(config).start()
    assert retry(lambda: d.of("files") and len(d.of("tick")) >= 2, timeout=5)
    d.write_config(
        config.replace('interval = "0.3s"', 'interval = "0.1s"')
        + '\n[queries.fresh]\nsql = "SELECT 2 AS two"\nmode = "snapshot"\ninterval = "0.2s"\n'
    )
    d.send(signal.SIGHUP)
    assert retry(lambda: "config reloaded: 3 queries" in d.stderr(), timeout=5), d.stderr()
    (watched / "b").write_text("b")
    assert retry(lambda: len(d.of("files")) == 2 and len(d.of("fresh")) >= 2, timeout=5)
    files = d.of("files")
    assert [i["counter"] for i in files if i["counter"] == 0] == [0], "no second baseline for an unchanged query"
    assert files[1]["columns"]["path"] == str(watched / "b") and files[1]["counter"] > 0
    ticks = [i["counter"] for i in d.of("tick")]
    assert ticks == list(range(len(ticks))), "the changed interval kept the tick counter going"
    assert d.of("fresh")[0]["counter"] == 0 and d.of("fresh")[0]["snapshot"] == [{"two": 2}]
    # A broken config on reload is refused; the running one goes on.
    d.write_config(config + "[queries.bad\n")
    d.send(signal.SIGHUP)
    assert retry(lambda: "reload refused, keeping the running config" in d.stderr(), timeout=5)
    before = len(d.of("fresh"))
    assert retry(lambda: len(d.of("fresh")) > before + 1, timeout=3)
    assert d.stop()[0] == 0


# -- file sink under load ---------------------------------------------------------------------------


def test_rotation_under_load_never_tears_a_line(tmp_path, daemon):
    d = daemon(
        """
[control]
enabled = false
[state]
path = "state.db"
[sinks.out]
type = "file"
path = "out.jsonl"
rotate_bytes = 30000
keep = 3
fsync = "always"
[sinks.other]
type = "file"
path = "other.jsonl"
fsync = "never"
[queries.churn]
sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x, random() AS r FROM c"
interval = "0.05s"
sinks = ["out", "other"]
"""
    ).start()
    assert retry(lambda: os.path.exists(tmp_path / "out.jsonl.3"), timeout=8)
    time.sleep(0.5)
    assert d.stop()[0] == 0
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out.jsonl"))
    assert names == ["out.jsonl", "out.jsonl.1", "out.jsonl.2", "out.jsonl.3"]
    counters = []
    for name in ["out.jsonl.3", "out.jsonl.2", "out.jsonl.1", "out.jsonl"]:
        data = (tmp_path / name).read_bytes()
        assert data.endswith(b"\n")
        items = [json.loads(raw) for raw in data.splitlines()]  # raises on a torn line
        assert all(list(i) == EVENT_KEYS for i in items)
        counters += [i["counter"] for i in items]
    assert counters == sorted(counters)
    # Each run's lines go whole into one file: 200 added (+200 removed after the first run).
    runs = {c: counters.count(c) for c in counters}
    assert all(n == 400 for c, n in runs.items() if c not in (counters[0], 0))
    other = [json.loads(raw) for raw in (tmp_path / "other.jsonl").read_bytes().splitlines()]
    assert len(other) == 200 + 400 * (len({i["counter"] for i in other}) - 1)


# -- packs and the default config -------------------------------------------------------------------


def test_osquery_pack_runs_with_osquery_names(tmp_path, daemon):
    (tmp_path / "ops.conf").write_text(
        json.dumps(
            {
                "platform": "linux",
                "queries": {
                    "uptime": {"query": "SELECT 1 AS up", "interval": "1", "platform": "linux", "snapshot": True},
                    "mac": {"query": "SELECT 2 AS mac", "interval": "1", "platform": "darwin"},
                },
            }
        )
    )
    d = daemon(
        SINK
        + """
[packs]
paths = ["ops.conf"]
[queries.sched]
sql = "SELECT name, interval FROM osquery_schedule"
mode = "snapshot"
interval = "1s"
"""
    ).start()
    assert retry(lambda: d.of("pack_ops_uptime") and d.of("sched"), timeout=5)
    item = d.of("pack_ops_uptime")[0]
    assert item["action"] == "snapshot" and item["snapshot"] == [{"up": 1}]
    assert d.of("sched")[0]["snapshot"] == [
        {"name": "pack_ops_uptime", "interval": 1},
        {"name": "sched", "interval": 1},
    ]
    assert not d.of("pack_ops_mac")
    assert d.stop()[0] == 0


def test_embedded_default_config_runs_and_stops(tmp_path, daemon):
    d = daemon(None).start()
    assert retry(lambda: d.of("kernel_modules", "streamq-results.jsonl"), timeout=5)
    code, took = d.stop()
    assert code == 0 and took < 5
    assert (tmp_path / "streamq-state.db").exists()
    stdout = (tmp_path / "stdout.1.txt").read_text()
    assert "kernel_modules" in stdout
    assert "Traceback" not in d.stderr()


# -- the MQTT sink ------------------------------------------------------------------------------------


def test_results_reach_mqtt_as_the_same_lines(tmp_path, daemon, mosquitto):  # noqa: F811
    watched = tmp_path / "watched"
    watched.mkdir()
    for name in ("a", "b", "c"):
        (watched / name).write_text(name)
    prefix = unique_topic()
    got: list[bytes] = []
    listener = threading.Thread(target=lambda: got.extend(mosquitto.subscribe(f"{prefix}/test-host/files", 3, 10)))
    listener.start()
    time.sleep(0.3)  # mosquitto_sub is subscribed before the daemon publishes
    d = daemon(
        SINK
        + f"""
[host]
identifier = "test-host"
[sinks.broker]
type = "mqtt"
url = "{mosquitto.url}"
topic = "{prefix}/{{host}}/{{query}}"
"""
        + files_query("files", watched)
    ).start()
    listener.join(15)
    assert retry(lambda: len(d.of("files")) == 3, timeout=5)
    on_disk = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert sorted(got) == sorted(on_disk), "the broker got the file sink's lines, byte for byte"
    assert {json.loads(m)["columns"]["path"] for m in got} == {str(watched / n) for n in "abc"}
    assert mosquitto.subscribe("streamq/test-host/status", 1, 3) == [b"online"]
    assert d.stop()[0] == 0
    assert mosquitto.subscribe("streamq/test-host/status", 1, 3) == [b"offline"]
