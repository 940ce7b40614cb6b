"""EventWindow: the (floor, ceiling] slice a continuous reader reads each run."""

from __future__ import annotations

from streamq.ring import Rings
from streamq.sql.session import EventWindow


def test_bounded_pieces_and_a_ceiling_that_never_goes_back():
    rings = Rings(capacity=100)
    ring = rings.ring("t_events")
    for i in range(50):
        ring.append({"i": i})
    window = EventWindow.after(rings, {"t_events": 10}, limit=15)
    assert window.ceilings == {"t_events": 25}
    # A replaying source (resumed at eid 0 after a restart) has not reached the reader's floor yet:
    # the window is empty and the next floor stays where it was.
    behind = EventWindow.after(rings, {"t_events": 80}, limit=15)
    assert behind.ceilings == {"t_events": 80} and behind.empty


def test_a_window_of_given_rows_is_what_the_table_reads():
    import streamq
    from streamq.sources.records import declare_record_table

    declare_record_table("session_rows_events", {"n": "INTEGER"}, source="jsonl.session_rows")
    rings = Rings()
    ring = rings.ring("session_rows_events")
    for n in range(10):
        ring.append((n, "{}"))
    conn = streamq.connect(rings=rings)
    try:
        chosen = [entry for entry in ring.since(0) if entry[2][0] % 3 == 0]
        with EventWindow.of_rows({"session_rows_events": chosen}).apply(conn.session):
            assert [r["n"] for r in conn.query("SELECT n FROM session_rows_events")] == [0, 3, 6, 9]
        assert len(conn.query("SELECT n FROM session_rows_events")) == 10
    finally:
        conn.close()
