"""The control socket's streaming follow: `query --follow`'s options in a follow request, state kept
by the daemon for the connection that started the stream.

One daemon (`python -m streamq run`, a jsonl source with an event-time field) serves the module.
Window counts are checked against a ground truth computed here from the records written, and
against `streamq query --follow` over the same records; bad options must give the very line
`query --follow` prints.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from daemon_process import Daemon

from conftest import retry, run_cli

COLUMNS = 'columns = { status = "INTEGER", user = "TEXT" }'
COUNT = "SELECT status, count(*) AS n FROM app_events GROUP BY status"
T0 = 1_700_000_000  # a multiple of 10: windows of 10 s start here


def records(n: int, start: int = 0) -> list[dict]:
    """Records 0.4 s apart from T0: 25 to a 10 s window; three statuses in an uneven mix."""
    return [
        {"ts": T0 + i * 0.4, "status": (200, 200, 404, 500, 200)[i * 7 % 5], "user": f"u{i % 3}"}
        for i in range(start, start + n)
    ]


def truth(recs: list[dict], size: int = 10) -> Counter:
    """(window_start, status) -> count, by plain Python."""
    return Counter((int(r["ts"] // size * size), r["status"]) for r in recs)


class Stream:
    """One control connection: requests and replies, one JSON line each."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")

    def ask(self, body: dict) -> dict:
        self.file.write(json.dumps(body).encode() + b"\n")
        self.file.flush()
        return json.loads(self.file.readline())

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture(scope="module")
def daemon(request):
    root = Path(tempfile.mkdtemp(prefix="sqcs"))  # short: a socket path must fit 108 bytes
    log = root / "app.jsonl"
    log.touch()
    config = f"""
[state]
path = "{root}/state.db"
[control]
path = "{root}/run/control.sock"
max_reply_bytes = 200000
[sources.jsonl.app]
path = "{log}"
time = "ts"
poll_interval = "20ms"
{COLUMNS}
"""
    daemon = Daemon(root, config)

    def stop():
        if daemon.proc is not None and daemon.proc.poll() is None:
            try:
                daemon.stop(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(stop)
    daemon.start()  # waits until it says "running"
    daemon.log, daemon.socket = log, root / "run" / "control.sock"
    return daemon


def append(path: Path, recs: list[dict]) -> None:
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in recs))


def counts(rows: list[list]) -> Counter:
    """(window_start, status) -> n, from rows of status, n, window_start, window_end."""
    return Counter({(row[2], row[0]): row[1] for row in rows})


def test_a_tumbling_window_stream_updates_then_emits_each_window_once_final(daemon):
    stream = Stream(daemon.socket)
    try:
        start = stream.ask({"sql": COUNT, "follow": True, "window": "tumble 10s", "emit": "changes"})
        assert start["columns"] == ["status", "n", "window_start", "window_end"]
        assert start["rows"] == [] and start["tables"] == ["app_events"]
        number = start["stream"]
        finals: list[list] = []
        latest: dict = {}  # (window_start, status) -> the newest row of an open window

        def step(until) -> bool:
            reply = stream.ask({"stream": number})
            for row, kind in zip(reply["rows"], reply["kinds"]):
                assert kind in ("update", "final")
                if kind == "final":
                    finals.append(row)
                    latest.pop((row[2], row[0]), None)
                else:
                    latest[(row[2], row[0])] = row
            return until()

        first = records(10)  # all in the first window, which stays open
        append(daemon.log, first)
        assert retry(lambda: step(lambda: counts(list(latest.values())) == truth(first)), timeout=10)
        assert finals == []
        everything = records(70)  # 70 records: windows T0, T0+10 close; T0+20 stays open
        append(daemon.log, everything[10:])
        closed = lambda: counts(finals) == {k: v for k, v in truth(everything).items() if k[0] < T0 + 20}  # noqa: E731
        assert retry(lambda: step(closed), timeout=10), (finals, truth(everything))
        ended = stream.ask({"stream": number, "end": True})
        assert ended["ended"] is True and set(ended["kinds"]) == {"final"}
        finals.extend(ended["rows"])
        assert counts(finals) == truth(everything)
        assert len(finals) == len(truth(everything))  # each (window, status) once, final
        assert all(row[3] == row[2] + 10 for row in finals)
        gone = stream.ask({"stream": number})
        assert (
            gone["error"]
            == f"no stream {number} on this connection (a stream ends with the connection that started it)"
        )
    finally:
        stream.close()


def test_the_windows_equal_query_follows_over_the_same_records(daemon, tmp_path):
    recs = records(60, start=1000)
    stream = Stream(daemon.socket)
    try:
        number = stream.ask({"sql": COUNT, "follow": True, "window": "tumble 10s"})["stream"]
        append(daemon.log, recs)
        rows: list = []
        assert retry(lambda: rows.extend(stream.ask({"stream": number})["rows"]) or counts(rows).total() >= 50)
        rows += stream.ask({"stream": number, "end": True})["rows"]
    finally:
        stream.close()
    log = tmp_path / "same.jsonl"
    append(log, recs)
    config = tmp_path / "c.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{log}"\nfrom_start = true\ntime = "ts"\n{COLUMNS}\n')
    follow = run_cli(
        "query", "-c", str(config), "--follow", "--json", "--timeout", "3", "--window", "tumble 10s", COUNT
    )
    assert follow.returncode == 0, follow.stderr
    cli = [list(json.loads(line).values()) for line in follow.stdout.splitlines()]
    assert rows == cli and counts(rows) == truth(recs)


@pytest.mark.parametrize(
    ("options", "sql"),
    [
        ({"window": "tumbel 1m"}, COUNT),
        ({"window": "hop 1m every 5m"}, COUNT),
        ({"window": "tumble 0s"}, COUNT),
        ({"window": "tumble 1m", "window_key": "user"}, COUNT),
        ({"window": "session 30s", "window_key": "nosuch"}, COUNT),
        ({"emit": "changes"}, "SELECT status FROM app_events"),
        ({"dedup": "nosuch"}, "SELECT status FROM app_events"),
        ({"limit": "ten/1m"}, "SELECT status FROM app_events"),
        ({"grace": "soon"}, "SELECT status FROM app_events"),
        ({"dedup": "status"}, COUNT),  # an aggregate without a window
    ],
)
def test_bad_options_get_the_line_query_follow_prints(daemon, tmp_path, options, sql):
    stream = Stream(daemon.socket)
    try:
        reply = stream.ask({"sql": sql, "follow": True, **options})
    finally:
        stream.close()
    config = tmp_path / "c.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{tmp_path}/none.jsonl"\ntime = "ts"\n{COLUMNS}\n')
    flags = [a for name, value in options.items() for a in ("--" + name.replace("_", "-"), value)]
    cli = run_cli("query", "-c", str(config), "--follow", "--timeout", "1", *flags, sql)
    assert cli.returncode == 2
    assert cli.stderr == f"streamq: error: {reply['error']}\n"


def test_a_plain_follow_of_an_aggregate_is_refused_and_names_window(daemon):
    stream = Stream(daemon.socket)
    try:
        reply = stream.ask({"sql": "SELECT count(*) FROM app_events", "follow": True})
    finally:
        stream.close()
    assert "per-batch results" in reply["error"] and '--window "tumble 1m"' in reply["error"]


def test_streams_belong_to_their_connection_and_are_bounded(daemon):
    first, second = Stream(daemon.socket), Stream(daemon.socket)
    try:
        numbers = [first.ask({"sql": COUNT, "follow": True, "window": "tumble 1m"})["stream"] for _ in range(4)]
        assert numbers == [1, 2, 3, 4]
        refused = first.ask({"sql": COUNT, "follow": True, "window": "tumble 1m"})
        assert refused["error"] == "at most 4 streams per connection: end one first"
        assert "no stream 1 on this connection" in second.ask({"stream": 1})["error"]
        assert first.ask({"stream": 1, "end": True})["ended"] is True
        assert first.ask({"sql": COUNT, "follow": True, "window": "tumble 1m"})["stream"] == 5
        assert second.ask({"stream": True})["error"].startswith('"stream" must be the number')
        continued = second.ask({"sql": COUNT, "follow": {"app_events": 1}, "window": "tumble 1m"})
        assert continued["error"].startswith("streaming options start a stream")
    finally:
        first.close()
        second.close()


def test_max_reply_bytes_lowers_the_cap_and_truncate_at_bytes_sends_what_fits(daemon):
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5000) SELECT n, printf('%040d', n) FROM r"
    stream = Stream(daemon.socket)
    try:
        failed = stream.ask({"sql": sql, "max_reply_bytes": 10_000})
        assert failed["error"].startswith("the reply would be over 10000 bytes (max_reply_bytes)")
        cut = stream.ask({"sql": sql, "max_reply_bytes": 10_000, "truncate_at_bytes": True})
        assert cut["truncated"] is True and cut["cut"] == "bytes"
        assert 0 < len(cut["rows"]) < 5000 and cut["rows"][-1][0] == len(cut["rows"])
        assert len(json.dumps(cut["rows"], separators=(",", ":"))) <= 10_000
        raised = stream.ask({"sql": sql, "max_reply_bytes": 10_000_000})  # above [control]'s 200000: not raised
        assert raised["error"].startswith("the reply would be over 200000 bytes")
        whole = stream.ask({"sql": "SELECT 1 AS one", "truncate_at_bytes": True})
        assert whole == {"id": None, "columns": ["one"], "rows": [[1]], "truncated": False}
    finally:
        stream.close()
