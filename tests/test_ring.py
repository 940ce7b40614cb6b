"""EventRing, RingCursor and Rings: eids, slices, drops, expiry, resize, threads, memory."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

import pytest

from streamq.ring import EventRing, RingCursor, Rings, SourceStatus


def counts_add_up(ring: EventRing) -> bool:
    return ring.seen == ring.buffered + ring.dropped + ring.expired


class CountingRing(EventRing):
    """An EventRing that records how many slots each read walked (to prove reads are O(new))."""

    visited = 0

    def _entries(self, start, stop):
        out = super()._entries(start, stop)
        self.visited += len(out)
        return out


def test_eids_contiguous_monotonic_and_times_non_decreasing():
    ring = EventRing(100)
    eids = [ring.append({"i": i}) for i in range(50)]
    assert eids == list(range(1, 51))
    rows = ring.since(0)
    assert [e for e, _, _ in rows] == eids
    assert [r["i"] for _, _, r in rows] == list(range(50))
    times = [t for _, t, _ in rows]
    assert times == sorted(times)
    assert ring.first_eid == 1 and ring.last_eid == 50 and len(ring) == 50
    assert ring.stats() == {"seen": 50, "buffered": 50, "dropped": 0, "expired": 0}


def test_empty_ring():
    ring = EventRing(10)
    assert ring.since(0) == [] and ring.last_eid == 0 and ring.last_time is None
    assert ring.stats() == {"seen": 0, "buffered": 0, "dropped": 0, "expired": 0}
    with pytest.raises(ValueError):
        EventRing(0)


def test_time_never_goes_backwards():
    ring = EventRing(10)
    ring.append("a", when=100.0)
    ring.append("b", when=50.0)  # a clock step back must not break the time bisect
    assert [t for _, t, _ in ring.since(0)] == [100.0, 100.0]


def test_since_is_a_slice_of_only_the_new_rows():
    ring = CountingRing(200_000)
    for i in range(200_000):
        ring.append(i)
    ring.visited = 0
    rows = ring.since(199_990)
    assert [e for e, _, _ in rows] == list(range(199_991, 200_001))
    assert ring.visited == 10  # not 200,000
    ring.visited = 0
    assert [e for e, _, _ in ring.since(199_000, limit=3)] == [199_001, 199_002, 199_003]
    assert ring.visited == 3
    assert ring.since(200_000) == [] and ring.since(10**9) == []


def test_time_pushdown_bisects():
    ring = CountingRing(1000)
    for i in range(1000):
        ring.append(i, when=1_000.0 + i)
    ring.visited = 0
    rows = ring.since(0, min_time=1_995.0)
    assert [r for _, _, r in rows] == [995, 996, 997, 998, 999]
    assert ring.visited == 5
    assert [r for _, _, r in ring.since(997, min_time=1_000.0)] == [997, 998, 999]  # eid bound wins
    assert ring.since(0, min_time=5_000.0) == []
    assert len(ring.since(0, min_time=0.0)) == 1000


def test_full_ring_drops_oldest_and_counts_exactly():
    ring = EventRing(10)
    for i in range(25):
        ring.append(i)
    assert [r for _, _, r in ring.since(0)] == list(range(15, 25))
    assert ring.first_eid == 16 and ring.last_eid == 25
    assert ring.stats() == {"seen": 25, "buffered": 10, "dropped": 15, "expired": 0}
    assert counts_add_up(ring)
    # A reader asking from before the first held row gets what is left, from the oldest.
    assert [e for e, _, _ in ring.since(3)] == list(range(16, 26))


def test_max_age_expires_and_counts():
    ring = EventRing(100, max_age=10.0)
    now = time.time()
    for i in range(5):
        ring.append(i, when=now - 100)  # already too old
    for i in range(5, 8):
        ring.append(i, when=now + 1)
    assert ring.buffered == 8  # expiry is lazy...
    ring.expire()  # ...until a read or expire()
    assert ring.stats() == {"seen": 8, "buffered": 3, "dropped": 0, "expired": 5}
    assert [r for _, _, r in ring.since(0)] == [5, 6, 7]
    assert counts_add_up(ring)
    # Full and aged at once: each lost row is counted exactly once.
    for i in range(200):
        ring.append(i)
    assert counts_add_up(ring) and ring.buffered == 100


def test_resize_keeps_newest():
    ring = EventRing(100)
    for i in range(80):
        ring.append(i)
    lost = ring.resize(30)
    assert lost == 50 and ring.capacity == 30
    assert [r for _, _, r in ring.since(0)] == list(range(50, 80))
    assert ring.stats() == {"seen": 80, "buffered": 30, "dropped": 50, "expired": 0}
    ring.append(80)
    assert ring.since(80) == [(81, ring.last_time, 80)]
    assert ring.resize(1000) == 0
    assert [r for _, _, r in ring.since(0)] == list(range(51, 81))
    for i in range(81, 500):
        ring.append(i)
    assert len(ring) == 449 and ring.first_eid == 52 and counts_add_up(ring)  # grown: nothing more lost
    assert [e for e, _, _ in ring.since(0)] == list(range(52, 501))


def test_cursor_exactly_once_and_missed():
    ring = EventRing(10)
    cursor = RingCursor(ring, 0)
    for i in range(4):
        ring.append(i)
    first = cursor.read()
    assert [r for _, _, r in first.rows] == [0, 1, 2, 3] and first.missed == 0
    assert cursor.read().rows == []
    ring.append(4)
    assert [r for _, _, r in cursor.read().rows] == [4]
    for i in range(5, 30):  # 25 more into a ring of 10: 15 leave before the cursor sees them
        ring.append(i)
    assert cursor.pending() == 25
    result = cursor.read()
    assert [r for _, _, r in result.rows] == list(range(20, 30))
    assert result.missed == 15 and cursor.missed == 15
    # Limited reads page through without loss or repeat.
    for i in range(30, 37):
        ring.append(i)
    pages = [cursor.read(limit=3).rows for _ in range(3)]
    assert [r for page in pages for _, _, r in page] == list(range(30, 37))
    assert cursor.read(limit=3).rows == [] and cursor.missed == 15


def test_cursor_missed_when_everything_left():
    ring = EventRing(5, max_age=1.0)
    cursor = RingCursor(ring, 0)
    for i in range(5):
        ring.append(i, when=time.time() - 60)
    result = cursor.read()
    assert result.rows == [] and result.missed == 5 and cursor.position == 5
    assert ring.expired == 5


def test_cursor_starts_at_now_and_resumes_from_saved_position():
    ring = EventRing(100)
    for i in range(10):
        ring.append(i)
    live = RingCursor(ring)  # default: only rows from now on
    assert live.read().rows == []
    ring.append(10)
    assert [r for _, _, r in live.read().rows] == [10]
    saved = RingCursor(ring, 0)
    assert len(saved.read(limit=4).rows) == 4
    position = saved.position
    resumed = RingCursor(ring, position)  # e.g. after a restart, from the state file
    assert [r for _, _, r in resumed.read().rows] == list(range(4, 11))


def test_concurrent_appends_and_reader():
    ring = EventRing(50_000)
    per_thread, threads = 20_000, 4
    seen_by_reader: list[int] = []
    done = threading.Event()

    def writer(tag: int) -> None:
        for i in range(per_thread):
            ring.append((tag, i))

    def reader() -> None:
        cursor = RingCursor(ring, 0)
        while not done.is_set() or cursor.pending():
            seen_by_reader.extend(e for e, _, _ in cursor.read().rows)
        reader.missed = cursor.missed  # type: ignore[attr-defined]

    r = threading.Thread(target=reader)
    r.start()
    ws = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    done.set()
    r.join(30)
    total = per_thread * threads
    assert ring.seen == total and counts_add_up(ring)
    held = ring.since(0)
    eids = [e for e, _, _ in held]
    assert eids == list(range(total - 50_000 + 1, total + 1))  # contiguous, no duplicate, none lost
    # Each thread's rows are in its own order, and every row stored is one that was appended.
    for tag in range(threads):
        mine = [row[1] for _, _, row in held if row[0] == tag]
        assert mine == sorted(mine) and len(set(mine)) == len(mine)
    # The reader saw every eid at most once and accounted for each one: seen or missed.
    assert len(set(seen_by_reader)) == len(seen_by_reader)
    assert seen_by_reader == sorted(seen_by_reader)
    assert len(seen_by_reader) + reader.missed == total  # type: ignore[attr-defined]


def test_flood_keeps_memory_bounded_and_counts_exact():
    capacity, total = 10_000, 100_000
    payload = "x" * 200
    gc.collect()
    tracemalloc.start()
    try:
        ring = EventRing(capacity)
        base = tracemalloc.get_traced_memory()[0]
        for i in range(total):
            ring.append({"i": i, "data": payload + str(i)})  # a distinct ~250-byte row each
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    row_bytes = 600  # dict + str + entry tuple, generously
    assert peak - base < capacity * row_bytes * 1.5, (peak - base) / capacity
    assert current - base < capacity * row_bytes * 1.5
    assert ring.stats() == {"seen": total, "buffered": capacity, "dropped": total - capacity, "expired": 0}
    assert ring.since(0)[0][2]["i"] == total - capacity


def test_listeners_called_per_append_and_unsubscribe():
    ring = EventRing(10)
    calls = []
    undo = ring.subscribe(lambda: calls.append(ring.last_eid))
    ring.append(1)
    ring.append(2)
    undo()
    ring.append(3)
    assert calls == [1, 2]


def test_rings_and_status():
    rings = Rings(capacity=7, max_age=None)
    ring = rings.ring("x_events")
    assert rings.ring("x_events") is ring and ring.capacity == 7 and ring.name == "x_events"
    status = rings.status.setdefault("x_events", SourceStatus("s", "poll"))
    status.error("boom")
    status.error("bang")
    assert status.errors == 2 and status.last_error == "bang"
