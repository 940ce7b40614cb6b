"""osquery's result-line format (streamq.daemon.results) and differential results (streamq.daemon.diff)."""

from __future__ import annotations

import calendar
import json
import time

from streamq.daemon import results
from streamq.daemon.diff import diff, encode_row

EVENT_KEYS = [
    "name",
    "hostIdentifier",
    "calendarTime",
    "unixTime",
    "epoch",
    "counter",
    "numerics",
    "decorations",
    "columns",
    "action",
    "id",
]
HEADER_KEYS = EVENT_KEYS[:-3]


def header(**kw) -> results.Header:
    defaults = {"name": "q", "host": "h1", "epoch": 3, "counter": 5, "unix_time": 1_600_000_000}
    return results.Header(**{**defaults, **kw})


def test_event_lines_keys_in_osquery_order_removed_first():
    h = header(decorations={"host_uuid": "u-1"})
    lines = results.event_lines(h, [{"a": 1}, {"a": 2}], [{"a": 0}])
    items = [json.loads(line) for line in lines]
    assert [list(item) for item in items] == [EVENT_KEYS] * 3
    assert [(i["action"], i["columns"]) for i in items] == [
        ("removed", {"a": 0}),
        ("added", {"a": 1}),
        ("added", {"a": 2}),
    ]
    first = items[0]
    assert (first["name"], first["hostIdentifier"], first["epoch"], first["counter"]) == ("q", "h1", 3, 5)
    assert first["unixTime"] == 1_600_000_000 and first["numerics"] is True
    assert first["decorations"] == {"host_uuid": "u-1"}
    assert all(b"\n" not in line for line in lines)
    # A stable id per line: host, query, epoch, counter, the row's index in the run.
    assert [i["id"] for i in items] == ["h1:q:3:5:0", "h1:q:3:5:1", "h1:q:3:5:2"]


def test_calendar_time_is_osquery_asctime_in_utc():
    # osquery: asctime(gmtime(t)) trimmed + " UTC"; a day below 10 keeps asctime's padding.
    assert results.calendar_time(1_599_085_568) == "Wed Sep  2 22:26:08 2020 UTC"
    assert results.calendar_time(1_600_813_568) == "Tue Sep 22 22:26:08 2020 UTC"
    now = int(time.time())
    parsed = time.strptime(results.calendar_time(now), "%a %b %d %H:%M:%S %Y UTC")
    assert calendar.timegm(parsed) == now


def test_numerics_false_is_all_strings_with_empty_for_null():
    row = {"i": 7, "f": 2.5, "s": "x", "n": None, "b": b"\x01\xff"}
    (line,) = results.event_lines(header(numerics=False), [row], [])
    item = json.loads(line)
    assert item["numerics"] is False
    assert item["columns"] == {"i": "7", "f": "2.5", "s": "x", "n": "", "b": "01ff"}
    typed = json.loads(results.event_lines(header(), [{k: v for k, v in row.items() if k != "b"}], [])[0])
    assert typed["columns"] == {"i": 7, "f": 2.5, "s": "x", "n": None}


def test_batch_form_has_diff_results_and_header():
    line = results.batch_line(header(), [{"a": 1}], [{"a": 0}, {"a": -1}])
    item = json.loads(line)
    assert list(item) == ["diffResults", *HEADER_KEYS, "id"]
    assert item["id"] == "h1:q:3:5:0"
    assert item["diffResults"] == {"added": [{"a": 1}], "removed": [{"a": 0}, {"a": -1}]}
    text = json.loads(results.batch_line(header(numerics=False), [{"a": None}], []))
    assert text["diffResults"]["added"] == [{"a": ""}]


def test_snapshot_form():
    item = json.loads(results.snapshot_line(header(counter=0), [{"a": 1}, {"a": 2}]))
    assert list(item) == ["snapshot", "action", *HEADER_KEYS, "id"]
    assert item["id"] == "h1:q:3:0:0"
    assert item["action"] == "snapshot"
    assert item["snapshot"] == [{"a": 1}, {"a": 2}]
    assert item["counter"] == 0
    empty = json.loads(results.snapshot_line(header(), []))
    assert empty["snapshot"] == []


def test_non_ascii_and_control_characters_stay_one_valid_line():
    row = {"s": 'line\nbreak "quoted" \\x00 ünï \u2028'}
    (line,) = results.event_lines(header(), [row], [])
    assert b"\n" not in line
    assert json.loads(line)["columns"] == row


def test_diff_is_a_multiset_and_keeps_query_order():
    base = [encode_row(r) for r in ({"a": 1}, {"a": 1}, {"a": 2})]
    added, removed, new_base = diff(base, [{"a": 3}, {"a": 1}, {"a": 4}])
    assert added == [{"a": 3}, {"a": 4}]
    assert sorted(r["a"] for r in removed) == [1, 2]  # one of the two {"a": 1} rows went away
    assert new_base == [encode_row(r) for r in ({"a": 3}, {"a": 1}, {"a": 4})]
    again_added, again_removed, _ = diff(new_base, [{"a": 1}, {"a": 3}, {"a": 4}])
    assert (again_added, again_removed) == ([], [])  # row order alone is no change


def test_diff_first_run_adds_everything_and_an_empty_result_removes_all():
    added, removed, base = diff([], [{"a": 1, "b": None}, {"a": 1, "b": None}])
    assert added == [{"a": 1, "b": None}] * 2 and removed == []
    added, removed, base = diff(base, [])
    assert added == [] and removed == [{"a": 1, "b": None}] * 2 and base == []
