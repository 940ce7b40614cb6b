"""The streaming engine (streamq.stream): windows, watermarks, late rows, emit modes, dedup, limit.

Ground truth is computed here by plain Python over the whole input; the engine is fed
the same rows in chunks of 1, 7, 1,000 and all at once, and must give identical output.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from streamq.stream.pipeline import FINAL, SUPPRESSED, UPDATE, Pipeline
from streamq.stream.spec import StreamSpec, parse_limit, parse_window, stream_spec
from streamq.stream.windows import Windows


def records(n: int = 5000, seed: int = 7) -> list[dict]:
    """Mostly ordered event times with some disorder (up to 3 s), users and statuses."""
    rng = random.Random(seed)
    t = 1_700_000_000.0
    out = []
    for i in range(n):
        t += rng.random() * 0.05
        jitter = rng.random() * 3 if rng.random() < 0.1 else 0
        out.append(
            {"ts": round(t - jitter, 3), "user": f"u{rng.randrange(5)}", "status": rng.choice([200, 500]), "i": i}
        )
    return out


def count_by_status(rows: list[dict]) -> tuple[list[str], list[tuple]]:
    counts = Counter(r["status"] for r in rows)
    return ["status", "n"], sorted(counts.items())


def run(spec: StreamSpec, recs: list[dict], chunk: int, *, key=None) -> list[tuple]:
    pipe = Pipeline(spec, count_by_status, event_time=True)
    out = []
    for start in range(0, len(recs), chunk):
        part = recs[start : start + chunk]
        keys = [tuple(r[k] for k in key) for r in part] if key else None
        pipe.feed([r["ts"] for r in part], keys, part)
        out += [(o.kind, *o.row) for o in pipe.emitted()]
    out += [(o.kind, *o.row) for o in pipe.finish()]
    return out, pipe


@pytest.mark.parametrize("window", ["tumble 1s", "hop 2s every 500ms", "session 200ms"])
@pytest.mark.parametrize("grace", [0, 1.5])
def test_same_output_whatever_the_chunking(window, grace):
    recs = records()
    key = ("user",) if window.startswith("session") else None
    spec = stream_spec(window=window, grace=grace, window_key=list(key or ()))
    outputs = {chunk: run(spec, recs, chunk, key=key)[0] for chunk in (1, 7, 1000, len(recs))}
    assert len({tuple(o) for o in outputs.values()}) == 1, {c: len(o) for c, o in outputs.items()}
    assert outputs[1], "windows were emitted"


def truth_tumble(recs: list[dict], size: float, grace: float) -> tuple[dict, int]:
    """Per window start: status counts, applying the watermark and lateness record by record."""
    mark, late, windows = float("-inf"), 0, defaultdict(Counter)
    for r in recs:
        start = round(r["ts"] * 1000) // round(size * 1000) * size
        if start + size <= mark:
            late += 1
            continue
        windows[start][r["status"]] += 1
        mark = max(mark, r["ts"] - grace)
    return windows, late


@pytest.mark.parametrize("grace", [0, 1.5, 10])
def test_tumbling_counts_and_late_rows_match_ground_truth(grace):
    recs = records()
    out, pipe = run(stream_spec(window="tumble 1s", grace=grace), recs, 7)
    got = defaultdict(Counter)
    for kind, status, n, start, end in out:
        assert kind == FINAL and end - start == 1
        got[start][status] += n
    truth, late = truth_tumble(recs, 1.0, grace)
    assert {k: dict(v) for k, v in got.items()} == {k: dict(v) for k, v in truth.items()}
    assert pipe.late == late
    assert sum(sum(c.values()) for c in got.values()) + late == len(recs)  # every record: counted once
    if grace >= 3:
        assert late == 0  # the disorder is at most 3 s


def test_hop_windows_hold_each_row_in_every_window_that_contains_it():
    recs = [r for r in records(800) if True]
    recs.sort(key=lambda r: r["ts"])  # in order: nothing late
    out, pipe = run(stream_spec(window="hop 2s every 500ms"), recs, 13)
    assert pipe.late == 0
    totals = Counter()
    for _, _, n, start, end in out:
        assert end - start == 2 and (start * 1000) % 500 == 0
        totals[(start, end)] += n
    for (start, end), n in totals.items():
        assert n == sum(1 for r in recs if start <= r["ts"] < end)
    assert sum(totals.values()) == 4 * len(recs)  # size / slide windows per row


def test_sessions_per_key_close_after_the_gap():
    gap = 0.2
    recs = sorted(records(3000), key=lambda r: r["ts"])
    w = Windows(parse_window("session 200ms"), event_time=True)
    for r in recs:
        w.add(r["ts"], (r["user"],), r)
    closed = w.flush()
    by_user = defaultdict(list)
    for r in recs:
        by_user[r["user"]].append(round(r["ts"] * 1000))  # whole milliseconds: exact arithmetic
    gap_ms, expected = round(gap * 1000), []
    for user, times in by_user.items():  # sessions: runs of times less than the gap apart
        start = prev = times[0]
        for t in times[1:]:
            if t - prev >= gap_ms:
                expected.append((user, start, prev + gap_ms))
                start = t
            prev = t
        expected.append((user, start, prev + gap_ms))
    assert sorted((p.key[0], p.start, p.end) for p in closed) == sorted(expected)
    assert sum(p.count for p in closed) == len(recs)


def test_a_row_bridging_two_sessions_merges_them_in_row_order():
    w = Windows(parse_window("session 10s"), grace=60, event_time=True, journal=True)
    w.add(100.0, ("a",), "first")
    w.add(118.0, ("a",), "third")
    assert len(w.open_panes()) == 2
    w.add(109.0, ("a",), "bridge")  # [109, 119) touches [100, 110) and [118, 128): one session
    (pane,) = w.open_panes()
    assert (pane.start, pane.end) == (100_000, 128_000)
    assert pane.rows() == ["first", "bridge", "third"]  # by the session each row first joined
    assert ("merge", 1, 2) in w.journal


def test_emit_changes_gives_updates_then_one_final_per_window():
    recs = sorted(records(2000), key=lambda r: r["ts"])
    spec = stream_spec(window="tumble 5s", emit="changes")
    pipe = Pipeline(spec, count_by_status, event_time=True)
    outs = []
    for start in range(0, len(recs), 100):
        part = recs[start : start + 100]
        pipe.feed([r["ts"] for r in part], None, part)
        outs += pipe.emitted()
    outs += pipe.finish()
    finals = [o for o in outs if o.kind == FINAL]
    updates = [o for o in outs if o.kind == UPDATE]
    assert updates and finals
    final_windows = Counter((o.row[2], o.row[0]) for o in finals)
    assert set(final_windows.values()) == {1}  # one final row per window and status
    # The final numbers are those of emit = "close".
    closed, _ = run(stream_spec(window="tumble 5s"), recs, 100)
    assert sorted((k, *r) for k, *r in closed) == sorted((o.kind, *o.row) for o in finals)


def test_arrival_time_windows_close_on_the_clock():
    clock = [1000.0]
    pipe = Pipeline(stream_spec(window="tumble 10s"), count_by_status, event_time=False, clock=lambda: clock[0])
    pipe.feed([1001.0, 1002.0], None, [{"status": 200}, {"status": 500}])
    assert pipe.tick() == [] and pipe.emitted() == []
    assert pipe.next_wakeup() == 1010.0
    clock[0] = 1010.5
    pipe.tick()
    (a, b) = pipe.emitted()
    assert (a.row, b.row) == ((200, 1, 1000, 1010), (500, 1, 1000, 1010))


def test_a_window_over_its_capacity_drops_and_counts():
    w = Windows(parse_window("tumble 1m"), max_rows=10)
    w.add_many([60.0 + i / 100 for i in range(15)], None, list(range(15)))
    (pane,) = w.open_panes()
    assert pane.count == 10 and w.dropped == 5 and "over its limit of 10 rows" in w.drop_note


def test_dedup_emits_a_key_once_and_again_after_dedup_for():
    spec = stream_spec(dedup=["port", "path"], dedup_for="1h")
    pipe = Pipeline(spec)
    names = ["pid", "port", "path"]
    first = pipe.rows(names, [(1, 22, "/usr/sbin/sshd"), (2, 80, "/usr/sbin/nginx")], now=0)
    again = pipe.rows(names, [(3, 22, "/usr/sbin/sshd"), (4, 22, "/usr/bin/other")], now=60)
    later = pipe.rows(names, [(5, 22, "/usr/sbin/sshd")], now=3601)
    assert [o.row[0] for o in first] == [1, 2]
    assert [o.row[0] for o in again] == [4]  # a new pid of a known program: not again
    assert [o.row[0] for o in later] == [5]


def test_limit_passes_n_rows_per_period_and_reports_the_rest():
    pipe = Pipeline(stream_spec(limit="3/1m"))
    outs = pipe.rows(["n"], [(i,) for i in range(10)], now=60)
    outs += pipe.rows(["n"], [(i,) for i in range(10, 12)], now=121)
    outs += pipe.finish()
    kinds = [(o.kind, o.row) for o in outs]
    assert kinds == [
        ("row", (0,)),
        ("row", (1,)),
        ("row", (2,)),
        (SUPPRESSED, (7, 60, 120)),
        ("row", (10,)),
        ("row", (11,)),
    ]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"window": "sliding 1m"}, "unknown window"),
        ({"window": "tumble 0s"}, "above zero"),
        ({"window": "tumble -5s"}, "negative"),
        ({"window": "hop 1m every 5m"}, "slide is larger"),
        ({"window": "tumble 1m", "window_key": ["user"]}, "session window"),
        ({"emit": "changes"}, "goes with a window"),
        ({"limit": "ten per minute"}, "10/1m"),
        ({"grace": "-1s"}, "negative"),
    ],
)
def test_bad_options_say_what_is_wrong(options, words):
    with pytest.raises(ValueError, match=words):
        stream_spec(**options)


def test_forms_parse_to_milliseconds():
    assert parse_window("hop 10m every 1m").size_ms == 600_000
    assert parse_window("session 250ms").size_ms == 250
    assert parse_limit("10/1m").period_ms == 60_000
