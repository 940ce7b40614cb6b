"""Streaming queries in `streamq run`: windows over a jsonl source with event time, through
kill -9 restarts (each window exactly once, equal to SQLite's GROUP BY and to `tail`'s
output), first-seen keys that survive restarts, rate limits, learned columns, and the
configs `run` and `run --check` both refuse."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from daemon_process import SINK

from conftest import retry, run_cli

COUNT_SQL = "SELECT status, count(*) AS n FROM app_events GROUP BY status"


def make_records(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    t, out = 1_700_000_000.0, []
    for i in range(n):
        t += rng.random() * 0.004
        back = rng.random() * 1.5 if rng.random() < 0.05 else 0.0
        out.append({"ts": round(t - back, 3), "status": rng.choice([200, 404, 500]), "user": f"u{i % 7}", "i": i})
    return out


def append(path, records) -> None:
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def source(extra: str = "") -> str:
    return f"""
[sources.jsonl.app]
path = "app.jsonl"
from_start = true
checkpoint = "app.ckpt"
poll_interval = "50ms"
{extra}
"""


def windows_of(d) -> list[dict]:
    return [line["columns"] for line in d.of("per_status")]


def test_windows_survive_kill_9_exactly_once_and_equal_ground_truth(tmp_path, daemon):
    records = make_records(6000)
    log = tmp_path / "app.jsonl"
    config = (
        SINK
        + source('time = "ts"')
        + f"""
[schedule]
max_rows_per_run = 150
[queries.per_status]
sql = "{COUNT_SQL}"
window = "tumble 1s"
grace = "2s"
"""
    )
    d = daemon(config)
    thirds = [records[:2000], records[2000:4000], records[4000:]]
    append(log, thirds[0])
    target = 3
    d.start()
    for part in thirds[1:]:
        assert retry(lambda t=target: len(windows_of(d)) >= t, timeout=20), d.stderr()
        d.kill()  # in the middle of a window: the open ones are in the state store
        target = len(windows_of(d)) + 3
        append(log, part)
        d.start()
    last = records[-1]["ts"]
    append(log, [{"ts": last + 10, "status": 0, "user": "end", "i": -1}])  # closes every window
    expected = ground_truth(records)
    assert retry(lambda: len(windows_of(d)) >= len(expected), timeout=30), (len(windows_of(d)), len(expected))
    code, _ = d.stop()
    assert code == 0
    got = windows_of(d)
    keys = [(c["window_start"], c["status"]) for c in got]
    assert len(keys) == len(set(keys)), "a window was emitted twice"
    real = [c for c in got if c["status"] != 0]
    assert sorted((c["window_start"], c["window_end"], c["status"], c["n"]) for c in real) == expected
    assert all(line["action"] == "final" for line in d.of("per_status"))
    # The same bytes as `tail` over the whole file at once (the sentinel's window flushed at stop).
    tail = run_cli("tail", str(log), "--timeout", "5", "--time", "ts", "--grace", "2s", "--window", "tumble 1s",
                   "--sql", COUNT_SQL.replace("app_events", "stream"), timeout=60)  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    assert [json.dumps(c, separators=(",", ":")) for c in got] == tail.stdout.splitlines()


def ground_truth(records: list[dict]) -> list[tuple]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (ts REAL, status INTEGER)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(r["ts"], r["status"]) for r in records])
    rows = db.execute(
        "SELECT CAST(round(ts * 1000) AS INTEGER) / 1000 AS ws, status, count(*) FROM t GROUP BY ws, status"
    ).fetchall()
    return sorted((ws, ws + 1, status, n) for ws, status, n in rows)


def test_first_seen_keys_survive_kill_9(tmp_path, daemon):
    log = tmp_path / "app.jsonl"
    d = daemon(
        SINK
        + source()
        + """
[queries.ports]
sql = "SELECT user, port FROM app_events"
mode = "stream"
dedup = ["port"]
"""
    )
    append(log, [{"user": "a", "port": 22}, {"user": "b", "port": 22}, {"user": "c", "port": 80}])
    d.start()
    assert retry(lambda: len(d.of("ports")) == 2, timeout=15), d.stderr()
    d.kill()
    append(log, [{"user": "d", "port": 80}, {"user": "e", "port": 443}, {"user": "f", "port": 22}])
    d.start()
    assert retry(lambda: len(d.of("ports")) == 3, timeout=15), d.stderr()
    d.stop()
    assert [line["columns"] for line in d.of("ports")] == [
        {"user": "a", "port": 22},
        {"user": "c", "port": 80},
        {"user": "e", "port": 443},
    ]
    ids = [line["id"] for line in d.of("ports")]
    assert len(set(ids)) == 3


def test_limit_says_how_many_rows_it_held_back(tmp_path, daemon):
    log = tmp_path / "app.jsonl"
    d = daemon(
        SINK
        + source()
        + """
[queries.capped]
sql = "SELECT n FROM app_events"
mode = "stream"
limit = "2/2s"
"""
    )
    append(log, [{"n": i} for i in range(10)])
    d.start()
    assert retry(lambda: any(line["action"] == "suppressed" for line in d.of("capped")), timeout=15), d.stderr()
    d.stop()
    lines = d.of("capped")
    assert [line["columns"] for line in lines[:2]] == [{"n": 0}, {"n": 1}]  # a column nobody declared
    (report,) = [line for line in lines if line["action"] == "suppressed"]
    assert report["columns"]["suppressed"] == 8
    assert report["columns"]["period_end"] - report["columns"]["period_start"] == 2


def check(tmp_path, text: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return run_cli("run", "--check", "-c", str(path))


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ('sql = "SELECT * FROM app_events"\nwindow = "sliding 1m"', "unknown window"),
        ('sql = "SELECT * FROM app_events"\nwindow = "tumble 0s"', "above zero"),
        ('sql = "SELECT * FROM app_events"\nwindow = "hop 1m every 2m"', "slide is larger"),
        ('sql = "SELECT * FROM app_events"\nmode = "diff"\nwindow = "tumble 1m"', "mode = 'stream'"),
        ('sql = "SELECT * FROM app_events"\nmode = "stream"\nwindow_key = ["user"]', "session window"),
        ('sql = "SELECT 1 AS x"\nwindow = "tumble 1m"', "exactly one event table"),
        ('sql = "SELECT user FROM app_events"\nmode = "stream"\ndedup = ["port"]', "does not return"),
        ('sql = "SELECT count(*) FROM app_events"\nmode = "stream"', "window"),
    ],
)
def test_check_and_run_refuse_what_does_not_fit(tmp_path, query, words):
    text = SINK + source() + f"[queries.q]\n{query}\n"
    result = check(tmp_path, text)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    (tmp_path / "run.toml").write_text(text)
    started = run_cli("run", "-c", str(tmp_path / "run.toml"), timeout=30)
    assert started.returncode == 2 and words in started.stderr, started.stderr


def test_a_session_key_the_sql_does_not_name_is_learned(tmp_path):
    query = 'sql = "SELECT count(*) AS n FROM app_events"\nwindow = "session 30s"\nwindow_key = ["user"]'
    result = check(tmp_path, SINK + source('time = "ts"') + f"[queries.q]\n{query}\n")
    assert result.returncode == 0, result.stderr


def test_session_windows_through_kill_9_equal_tail(tmp_path, daemon):
    records = make_records(3000, seed=9)
    log = tmp_path / "app.jsonl"
    sql = "SELECT user, count(*) AS n FROM app_events GROUP BY user"
    tail = run_cli("tail", "-", "--time", "ts", "--window", "session 20ms", "--window-key", "user",
                   "--sql", sql.replace("app_events", "stream"), input="".join(json.dumps(r) + "\n" for r in records))  # fmt: skip
    expected = tail.stdout.splitlines()
    assert len(expected) > 100 and "late record" in tail.stderr  # sessions enough, and late rows among them
    d = daemon(
        SINK
        + source('time = "ts"')
        + f"""
[schedule]
max_rows_per_run = 100
[queries.sessions]
sql = "{sql}"
window = "session 20ms"
window_key = ["user"]
"""
    )
    append(log, records[:1500])
    d.start()
    assert retry(lambda: len(d.of("sessions")) >= len(expected) // 4, timeout=20), d.stderr()
    d.kill()  # open sessions (some merged from others) are in the state store
    append(log, records[1500:])
    d.start()
    assert retry(lambda: len(d.of("sessions")) >= len(expected) - 7, timeout=30)  # all but the last per user
    d.stop()  # SIGTERM: the open sessions are flushed, final
    got = [json.dumps(line["columns"], separators=(",", ":")) for line in d.of("sessions")]
    assert got == expected


def test_late_rows_are_counted_in_streamq_events(tmp_path, daemon):
    log = tmp_path / "app.jsonl"
    d = daemon(
        SINK
        + source('time = "ts"')
        + """
[queries.per_status]
sql = "SELECT status, count(*) AS n FROM app_events GROUP BY status"
window = "tumble 10s"
"""
    )
    append(log, [{"ts": 100.0, "status": 1}, {"ts": 130.5, "status": 1}, {"ts": 110.0, "status": 2}, {"status": 3}])
    d.start()
    with d.control() as client:
        events = lambda: client.query("SELECT late, skipped FROM streamq_events WHERE name = 'app_events'")  # noqa: E731
        assert retry(lambda: events()[0]["late"] == 1, timeout=15), events()
        assert events()[0]["skipped"] == 1  # the record without a time
    assert [line["columns"] for line in d.of("per_status")] == [
        {"status": 1, "n": 1, "window_start": 100, "window_end": 110}
    ]


def test_a_window_over_the_ring_capacity_drops_rows_and_says_so(tmp_path, daemon):
    log = tmp_path / "app.jsonl"
    d = daemon(
        SINK
        + source('time = "ts"')
        + """
[rings]
capacity = 1000
[queries.per_minute]
sql = "SELECT count(*) AS n FROM app_events"
window = "tumble 1h"
"""
    )
    append(log, [{"ts": 100.0 + i / 1000} for i in range(900)])
    d.start()

    def consumed() -> int:  # the query's committed cursor in the state store
        db = sqlite3.connect(tmp_path / "state.db")
        try:
            found = db.execute("SELECT cursors FROM queries WHERE name = 'per_minute'").fetchall()
        finally:
            db.close()
        return json.loads(found[0][0]).get("app_events", [None, 0])[1] if found else 0

    assert retry(lambda: consumed() >= 900, timeout=15)  # the ring holds 1,000: these first, then the rest
    append(log, [{"ts": 101.0 + i / 1000} for i in range(600)])
    assert retry(lambda: "dropped" in d.stderr(), timeout=15), d.stderr()
    assert "500 rows dropped so far" in d.stderr() and "over its limit of 1000 rows" in d.stderr()
    d.stop()  # the window is flushed with the rows it could hold
    assert [line["columns"]["n"] for line in d.of("per_minute")] == [1000]
