"""Ring-backed event tables through SQL: eid/time pushdown, hidden eid, joins, windows, meta tables."""

from __future__ import annotations

import os
import pwd
import time

import pytest

import streamq
from streamq.ring import EventRing, Rings, SourceStatus
from streamq.tables.events import PROCESS_EVENTS, event_row


class CountingRing(EventRing):
    """Records how many held rows reads walked: proves a query read only its slice."""

    visited = 0

    def _entries(self, start, stop):
        out = super()._entries(start, stop)
        self.visited += len(out)
        return out


def proc_row(pid: int, **extra) -> dict:
    return {"pid": pid, "action": "exec", "syscall": "execve", "cmdline": f"cmd {pid}", **extra}


@pytest.fixture
def rings():
    return Rings(capacity=1000, max_age=None)


@pytest.fixture
def db(rings):
    conn = streamq.connect(rings=rings)
    yield conn
    conn.close()


def fill(rings: Rings, n: int, *, when=None) -> EventRing:
    ring = rings.ring("process_events")
    for i in range(1, n + 1):
        ring.append(proc_row(1000 + i), when=None if when is None else when(i))
    return ring


def test_rows_and_typed_values(db, rings):
    fill(rings, 3)
    rows = db.query("SELECT pid, cmdline, action, syscall, time, eid FROM process_events")
    assert [(r["pid"], r["cmdline"], r["eid"]) for r in rows] == [
        (1001, "cmd 1001", 1),
        (1002, "cmd 1002", 2),
        (1003, "cmd 1003", 3),
    ]
    now = int(time.time())
    assert all(isinstance(r["time"], int) and now - 5 <= r["time"] <= now for r in rows)
    assert db.query("SELECT count(*) AS n FROM process_events WHERE path IS NULL")[0]["n"] == 3  # missing key -> NULL


def test_tuple_rows_from_event_row(db, rings):
    ring = rings.ring("process_events")
    ring.append(event_row(PROCESS_EVENTS, proc_row(42, uid=7)))
    assert db.query("SELECT pid, uid, action FROM process_events") == [{"pid": 42, "uid": 7, "action": "exec"}]


def test_eid_is_hidden(db, rings):
    fill(rings, 2)
    names = db.execute("SELECT * FROM process_events")[0]
    assert "eid" not in names and "time" in names and "pid" in names
    assert [c.hidden for c in PROCESS_EVENTS.columns if c.name == "eid"] == [True]
    assert [r["eid"] for r in db.query("SELECT eid FROM process_events")] == [1, 2]


def test_empty_without_rings():
    conn = streamq.connect()
    try:
        assert conn.query("SELECT * FROM process_events") == []
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("eid > 7", [8, 9, 10]),
        ("eid >= 7", [7, 8, 9, 10]),
        ("eid = 4", [4]),
        ("eid < 3", [1, 2]),
        ("eid <= 3", [1, 2, 3]),
        ("eid > 2 AND eid < 5", [3, 4]),
        ("eid > 2.5", [3, 4, 5, 6, 7, 8, 9, 10]),
        ("eid IN (2, 9)", [2, 9]),
        ("eid > 100", []),
        ("7 < eid", [8, 9, 10]),
    ],
)
def test_eid_constraints(db, rings, where, expected):
    fill(rings, 10)
    assert [r["eid"] for r in db.query(f"SELECT eid FROM process_events WHERE {where}")] == expected


def test_eid_pushdown_reads_only_the_slice():
    rings = Rings(capacity=1_000_000, max_age=None)
    ring = rings["process_events"] = CountingRing(1_000_000, None, name="process_events")
    row = proc_row(1)
    for _ in range(1_000_000):
        ring.append(row)
    conn = streamq.connect(rings=rings)
    try:
        last = ring.last_eid
        ring.visited = 0
        rows = conn.query("SELECT eid, pid FROM process_events WHERE eid > ?", (last - 5,))
        assert [r["eid"] for r in rows] == list(range(last - 4, last + 1))
        assert ring.visited == 5
        ring.visited = 0
        assert len(conn.query("SELECT eid FROM process_events WHERE eid >= ?", (last - 5,))) == 6
        assert ring.visited == 6
        ring.visited = 0
        assert conn.query("SELECT eid FROM process_events WHERE eid = 500000") == [{"eid": 500_000}]
        assert ring.visited == 1
    finally:
        conn.close()


def test_time_pushdown(db, rings):
    ring = CountingRing(1000, None, name="process_events")
    rings["process_events"] = ring
    base = 1_700_000_000
    for i in range(100):
        ring.append(proc_row(i), when=base + i + 0.5)  # times base+0.5 .. base+99.5
    ring.visited = 0
    rows = db.query("SELECT pid, time FROM process_events WHERE time >= ?", (base + 95,))
    assert [r["pid"] for r in rows] == [95, 96, 97, 98, 99]
    assert [r["time"] for r in rows] == [base + 95, base + 96, base + 97, base + 98, base + 99]
    assert ring.visited == 5
    assert [r["pid"] for r in db.query("SELECT pid FROM process_events WHERE time > ?", (base + 97,))] == [98, 99]
    # A fractional bound: time (whole seconds) > 97.5 means time >= 98.
    assert [r["pid"] for r in db.query("SELECT pid FROM process_events WHERE time > ?", (base + 97.5,))] == [98, 99]
    assert [r["pid"] for r in db.query("SELECT pid FROM process_events WHERE time >= ?", (base + 97.5,))] == [98, 99]
    assert [r["pid"] for r in db.query("SELECT pid FROM process_events WHERE time = ?", (base + 50,))] == [50]
    assert db.query("SELECT pid FROM process_events WHERE time > ?", (base + 1000,)) == []
    both = db.query("SELECT pid FROM process_events WHERE time >= ? AND eid > 98", (base + 10,))
    assert [r["pid"] for r in both] == [98, 99]


def test_join_with_users(db, rings):
    me = pwd.getpwuid(os.getuid())
    ring = rings.ring("process_events")
    ring.append(proc_row(11, uid=os.getuid()))
    ring.append(proc_row(12, uid=2**31 - 7))  # no such user: inner join drops it
    rows = db.query("SELECT p.pid, u.username, u.directory FROM process_events p JOIN users u USING (uid)")
    assert rows == [{"pid": 11, "username": me.pw_name, "directory": me.pw_dir}]
    left = db.query("SELECT p.pid, u.username FROM process_events p LEFT JOIN users u USING (uid) ORDER BY p.pid")
    assert left == [{"pid": 11, "username": me.pw_name}, {"pid": 12, "username": None}]


def test_join_with_processes_snapshot(db, rings):
    rings.ring("process_events").append(proc_row(os.getpid()))
    rows = db.query("SELECT e.pid, p.name FROM process_events e JOIN processes p ON p.pid = e.pid")
    assert len(rows) == 1 and rows[0]["pid"] == os.getpid() and rows[0]["name"]


def test_floors_and_ceilings_window(db, rings):
    fill(rings, 10)
    session = db.session
    session.floors["process_events"] = 3
    session.ceilings["process_events"] = 6
    try:
        assert [r["eid"] for r in db.query("SELECT eid FROM process_events")] == [4, 5, 6]
        assert [r["eid"] for r in db.query("SELECT eid FROM process_events WHERE eid > 4")] == [5, 6]
        assert [r["eid"] for r in db.query("SELECT eid FROM process_events WHERE eid < 5")] == [4]
        assert db.query("SELECT eid FROM process_events WHERE eid > 8") == []
        session.ceilings.clear()
        assert [r["eid"] for r in db.query("SELECT eid FROM process_events")] == [4, 5, 6, 7, 8, 9, 10]
        session.floors["process_events"] = 10
        assert db.query("SELECT eid FROM process_events") == []
    finally:
        session.floors.clear()
        session.ceilings.clear()
    assert len(db.query("SELECT eid FROM process_events")) == 10


def test_dropped_rows_are_not_returned(db):
    rings = Rings(capacity=5, max_age=None)
    conn = streamq.connect(rings=rings)
    try:
        fill(rings, 12)
        assert [r["eid"] for r in conn.query("SELECT eid FROM process_events")] == [8, 9, 10, 11, 12]
        assert [r["eid"] for r in conn.query("SELECT eid FROM process_events WHERE eid > 2")] == [8, 9, 10, 11, 12]
    finally:
        conn.close()


def test_streamq_events_and_osquery_events(db, rings):
    assert db.query("SELECT * FROM streamq_events") == []
    small = Rings(capacity=4, max_age=30.0)
    conn = streamq.connect(rings=small)
    try:
        ring = small.ring("process_events")
        status = small.status["process_events"] = SourceStatus("process", "netlink", active=True, mode="netlink")
        status.overflows = 2
        status.skipped = 1
        status.error("boom")
        now = time.time()
        ring.append(proc_row(1), when=now - 120)  # past max_age
        for i in range(6):
            ring.append(proc_row(i), when=now)
        small.ring("file_events")  # a ring with no source status yet
        rows = {r["name"]: r for r in conn.query("SELECT * FROM streamq_events")}
        assert set(rows) == {"file_events", "process_events"}
        p = rows["process_events"]
        assert p["source"] == "process" and p["kind"] == "netlink" and p["mode"] == "netlink"
        assert p["active"] == 1 and p["events"] == 7 and p["buffered"] == 4 and p["capacity"] == 4
        # The aged row was pushed out by the full ring before anything expired it: dropped.
        assert p["dropped"] == 3 and p["expired"] == 0
        assert p["events"] == p["buffered"] + p["dropped"] + p["expired"]
        assert p["overflows"] == 2 and p["errors"] == 1 and p["skipped"] == 1 and p["last_error"] == "boom"
        assert p["last_event_time"] == int(now)
        f = rows["file_events"]
        assert f["source"] is None and f["active"] == 0 and f["events"] == 0 and f["last_event_time"] is None

        osq = conn.query("SELECT * FROM osquery_events ORDER BY name, type")
        assert {
            "name": "process",
            "publisher": "process",
            "type": "publisher",
            "subscriptions": 1,
            "events": 7,
            "refreshes": 0,
            "active": 1,
        } in osq
        assert {
            "name": "process_events",
            "publisher": "process",
            "type": "subscriber",
            "subscriptions": 0,
            "events": 7,
            "refreshes": 0,
            "active": 1,
        } in osq
        assert len(osq) == 4
    finally:
        conn.close()


def test_streamq_events_counts_expiry(db):
    aged = Rings(capacity=100, max_age=30.0)
    conn = streamq.connect(rings=aged)
    try:
        ring = aged.ring("process_events")
        for i in range(3):
            ring.append(proc_row(i), when=time.time() - 120)
        ring.append(proc_row(9))
        row = conn.query("SELECT events, buffered, dropped, expired FROM streamq_events")[0]
        assert row == {"events": 4, "buffered": 1, "dropped": 0, "expired": 3}
    finally:
        conn.close()


# --- eid and time: one declaration, and the flag the engine reads -------------------------------------


def test_every_event_table_has_the_one_eid_and_time():
    import dataclasses

    from streamq.sql.connection import load_tables
    from streamq.tables.events import ARRIVAL_TIME, EVENT_ID, EVENT_TIME

    events = {name: spec for name, spec in load_tables().items() if spec.module == "streamq.tables.events"}
    assert {"process_events", "file_events", "socket_events", "network_events", "hardware_events"} <= set(events)
    for name, spec in events.items():
        # A record table with an event-time field: its own time is `time`, the receive time arrival_time.
        stamp = ARRIVAL_TIME if any(c.name == ARRIVAL_TIME.name for c in spec.columns) else EVENT_TIME
        for declared in (stamp, EVENT_ID):
            (column,) = [c for c in spec.columns if c.name == declared.name]
            assert dataclasses.replace(column, description=declared.description) == declared, name
        assert [c.name for c in spec.columns if c.range] == [
            c.name for c in spec.columns if c.name in (stamp.name, "eid")
        ], name


def test_an_event_table_may_not_declare_eid_or_time_anew():
    from streamq.tables.events import make_event_table

    with pytest.raises(ValueError, match="EVENT_TIME"):
        make_event_table("test_bad_events", "Bad.", [streamq.Column("time", streamq.BIGINT, "Mine.")])
    assert "test_bad_events" not in streamq.sql.schema.REGISTRY


def test_range_pushdown_follows_the_column_flag_not_the_name():
    """A snapshot table's own `time` column gets no range constraints; a flagged column does."""
    from streamq.sql import schema

    seen: dict[str, list] = {}

    @streamq.table(
        "test_ranges",
        "Ranges.",
        [
            streamq.Column("time", streamq.BIGINT, "An ordinary column named time."),
            streamq.Column("n", streamq.INTEGER, "A range column.", range=True),
        ],
    )
    def gen_test_ranges(ctx):
        seen["time"], seen["n"] = ctx.ops("time"), ctx.ops("n")
        yield from ({"time": i, "n": i} for i in range(10))

    try:
        conn = streamq.connect()
        rows = conn.query("SELECT n FROM test_ranges WHERE time > 3 AND n >= 5 AND n < 8")
        conn.close()
    finally:
        schema.REGISTRY.pop("test_ranges", None)
    assert [r["n"] for r in rows] == [5, 6, 7]
    assert seen["time"] == []
    assert sorted((c.op, c.value) for c in seen["n"]) == [("<", 8), (">=", 5)]
