"""The daemon's control socket: `streamq query/shell --connect`, streamq.Client, the read-only guard.

One daemon (`python -m streamq run -c <cfg>`, a process source, one query) serves the module;
it is started once and stopped in a finalizer. Its socket lives in a directory the daemon
creates, so the test sees the modes it chose.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from daemon_process import DaemonDir, short_tmp

import streamq
from conftest import retry, run_cli
from streamq.client import DaemonUnavailable

DEADLINE = 1.0
MAX_ROWS = 50_000
COUNT_FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


def _rows(n: int, width: int = 10) -> str:
    return (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < "
        f"{n}) SELECT n, printf('%0{width}d', n) AS pad FROM r"
    )


class DaemonProcess(DaemonDir):
    def __init__(self, root: Path, socket_path: Path, *, query: bool = True, deadline: float = DEADLINE) -> None:
        self.root, self.socket = root, socket_path
        config = f"""
[state]
path = "{root}/state.db"
[control]
path = "{socket_path}"
max_rows = {MAX_ROWS}
deadline = "{deadline}s"
[sources.process]
[sinks.out]
type = "file"
path = "{root}/results.jsonl"
"""
        if query:
            config += '[queries.process_count]\nsql = "SELECT count(*) AS n FROM processes"\ninterval = 3600\n'
        super().__init__(root, config)

    def wait_running(self) -> None:
        self.wait_for("running", timeout=15)


@pytest.fixture(scope="module")
def root():
    yield from short_tmp("sqctl")


@pytest.fixture(scope="module")
def daemon(root, request):
    d = DaemonProcess(root, root / "run" / "control.sock")
    request.addfinalizer(d.stop)
    d.wait_running()
    return d


@pytest.fixture
def client(daemon):
    with streamq.Client(str(daemon.socket), timeout=30) as c:
        yield c


def raw_request(path: Path, *lines: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(path))
        s.sendall(b"".join(lines))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [orjson.loads(line) for line in data.splitlines()]


def test_socket_is_0600_in_a_0700_directory_the_daemon_made(daemon):
    st = os.lstat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.socket.parent).st_mode) == 0o700
    assert "Traceback" not in daemon.stderr()


def test_query_connect_sees_the_daemons_process_events_ring(daemon, root):
    program = root / f"sqctl-sleep-{os.getpid()}"
    shutil.copy("/bin/sleep", program)
    child = subprocess.Popen([str(program), "30"])
    try:
        sql = f"SELECT pid, path, action FROM process_events WHERE pid = {child.pid} AND action = 'exec'"

        def seen():
            result = run_cli("query", "--connect", str(daemon.socket), "--json", sql)
            assert result.returncode == 0, result.stderr
            return orjson.loads(result.stdout)

        rows = retry(seen, timeout=10, interval=0.2)
        assert rows == [{"pid": child.pid, "path": str(program), "action": "exec"}]
        local = run_cli("query", "--json", sql)  # a fresh process has empty rings of its own
        assert local.returncode == 0 and orjson.loads(local.stdout) == []
    finally:
        child.kill()
        child.wait()


def test_query_connect_sees_the_schedule_in_every_output_mode(daemon):
    sql = "SELECT name, interval FROM streamq_schedule"
    result = run_cli("query", "--connect", str(daemon.socket), "--json", sql)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout) == [{"name": "process_count", "interval": 3600}]
    csv = run_cli("query", "--connect", str(daemon.socket), "--csv", sql)
    assert csv.stdout == "name,interval\nprocess_count,3600\n"
    line = run_cli("query", "--connect", str(daemon.socket), "--line", sql)
    assert "name = process_count" in line.stdout
    local = run_cli("query", "--json", sql)
    assert orjson.loads(local.stdout) == []  # no daemon in that process


def test_client_from_python_runs_in_the_daemon_with_params(client, daemon):
    assert client.query("SELECT pid FROM streamq_info") == [{"pid": daemon.proc.pid}]
    assert client.query("SELECT ? AS a, ? AS b, ? AS c", [1, "x", None]) == [{"a": 1, "b": "x", "c": None}]
    assert client.query("SELECT :n * 2 AS d, :t AS t", {"n": 21, "t": True}) == [{"d": 42, "t": 1}]
    assert client.query("SELECT x'00ff10' AS b, 1.5 AS f") == [{"b": "00ff10", "f": 1.5}]
    reply = client.request("SELECT pid FROM processes WHERE pid = 1")
    assert reply.columns == ["pid"] and reply.rows == [[1]] and reply.truncated is False
    empty = client.request("SELECT pid FROM processes WHERE pid = -1")
    assert empty.columns == ["pid"] and empty.rows == []


def test_sql_error_is_a_query_error_and_exit_1(client, daemon):
    with pytest.raises(streamq.QueryError, match="no such table: nonesuch"):
        client.query("SELECT * FROM nonesuch")
    result = run_cli("query", "--connect", str(daemon.socket), "SELECT nosuch FROM processes")
    assert result.returncode == 1
    assert result.stderr.strip() == "streamq: error: no such column: nosuch"


@pytest.mark.parametrize(
    "sql, fragment",
    [
        ("ATTACH DATABASE '{root}/attached.db' AS other", "not allowed on the read-only connection: ATTACH"),
        ("CREATE TEMP TABLE t(x)", "changing the schema"),
        ("INSERT INTO temp.t VALUES (1)", "no such table: temp.t"),  # the CREATE above never happened
        ("INSERT INTO processes (pid) VALUES (1)", "not allowed on the read-only connection: INSERT processes"),
        ("CREATE TABLE t(x)", "changing the schema"),
        ("CREATE VIEW v AS SELECT 1", "changing the schema"),
        ("DROP TABLE processes", "changing the schema"),
        ("PRAGMA writable_schema = 1", "PRAGMA writable_schema = 1"),
        ("PRAGMA query_only = 0", "PRAGMA query_only = 0"),
        ("PRAGMA journal_mode", "PRAGMA journal_mode"),
        ("SELECT load_extension('{root}/evil.so')", "load_extension"),
        ("BEGIN", "TRANSACTION"),
        ("DETACH DATABASE main", "DETACH"),
        ("SELECT 1; SELECT 2", "one statement per request"),
    ],
)
def test_refused_requests_get_an_error_and_the_daemon_goes_on(client, daemon, root, sql, fragment):
    with pytest.raises(streamq.QueryError) as err:
        client.query(sql.format(root=root))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
    assert client.query("SELECT 1 AS one") == [{"one": 1}]
    assert not (root / "attached.db").exists()
    assert daemon.proc.poll() is None


def test_reads_that_select_legitimately_needs_are_allowed(client):
    fib = (
        "WITH RECURSIVE f(i, a, b) AS (SELECT 1, 0, 1 UNION ALL SELECT i + 1, b, a + b FROM f WHERE i < 10) "
        "SELECT group_concat(a) AS s FROM f"
    )
    assert client.query(fib) == [{"s": "0,1,1,2,3,5,8,13,21,34"}]
    window = client.query("SELECT sum(column1) OVER (ORDER BY column1) AS run FROM (VALUES (1), (2), (3))")
    assert [r["run"] for r in window] == [1, 3, 6]
    assert client.query("SELECT value FROM json_each('[7, 8]')") == [{"value": 7}, {"value": 8}]
    info = client.query("SELECT name FROM pragma_table_info('processes') WHERE cid = 0")
    assert info == [{"name": "pid"}]
    both = client.query(
        "WITH p AS MATERIALIZED (SELECT pid FROM processes WHERE pid = 1) SELECT count(*) AS n FROM p, p AS q"
    )
    assert both == [{"n": 1}]


def test_a_never_ending_query_hits_the_deadline(client, daemon):
    started = time.monotonic()
    with pytest.raises(streamq.QueryError, match=r"ran past its 1s deadline"):
        client.query(COUNT_FOREVER)
    took = time.monotonic() - started
    assert DEADLINE <= took < DEADLINE + 2, took
    started = time.monotonic()
    with pytest.raises(streamq.QueryError, match=r"ran past its 0.2s deadline"):
        client.query(COUNT_FOREVER, deadline=0.2)  # a request may lower the deadline
    assert time.monotonic() - started < DEADLINE
    with pytest.raises(streamq.QueryError, match=r"ran past its 1s deadline"):
        client.query(COUNT_FOREVER, deadline=3600)  # ... never raise it
    assert client.query("SELECT 2 AS two") == [{"two": 2}]


def test_the_row_cap_truncates_and_says_so(client, daemon):
    reply = client.request(_rows(100), max_rows=7)
    assert [row[0] for row in reply.rows] == [1, 2, 3, 4, 5, 6, 7] and reply.truncated is True
    exact = client.request(_rows(7), max_rows=7)
    assert len(exact.rows) == 7 and exact.truncated is False
    capped = client.request(_rows(MAX_ROWS + 10), max_rows=10**9)  # the daemon's cap wins
    assert len(capped.rows) == MAX_ROWS and capped.truncated is True
    result = run_cli("query", "--connect", str(daemon.socket), "--csv", _rows(MAX_ROWS + 1))
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == MAX_ROWS + 1  # the header and the capped rows
    assert f"row cap cut the result at {MAX_ROWS} rows" in result.stderr


def test_protocol_errors_each_get_a_reply_with_the_request_id(daemon):
    replies = raw_request(
        daemon.socket,
        b'{"id": "a", "sql": "SELECT 1 AS x"}\n',
        b"this is not json\n",
        b"[1, 2]\n",
        b'{"id": 3}\n',
        b'{"id": 4, "sql": "SELECT ?", "params": [[1]]}\n',
        b'{"id": 5, "sql": "SELECT 1", "params": "x"}\n',
        b'{"id": 6, "sql": "SELECT 1", "deadline": -1}\n',
        b'{"id": 7, "sql": "SELECT 1", "max_rows": 0}\n',
        b"\n",
        b'{"id": {"any": "json"}, "sql": "SELECT ? AS p", "params": [false]}\n',
    )
    assert replies[0] == {"id": "a", "columns": ["x"], "rows": [[1]], "truncated": False}
    assert [r["id"] for r in replies[1:]] == [None, None, 3, 4, 5, 6, 7, {"any": "json"}]
    assert "malformed JSON" in replies[1]["error"]
    assert "JSON object" in replies[2]["error"]
    assert '"sql" must be' in replies[3]["error"]
    assert "parameter must be" in replies[4]["error"]
    assert '"params" must be' in replies[5]["error"]
    assert '"deadline" must be' in replies[6]["error"]
    assert '"max_rows" must be' in replies[7]["error"]
    assert all(set(r) == {"id", "error"} for r in replies[1:8])
    assert replies[8] == {"id": {"any": "json"}, "columns": ["p"], "rows": [[0]], "truncated": False}


def test_eight_concurrent_clients_all_get_their_own_answers(daemon):
    barrier = threading.Barrier(8)

    def worker(k: int) -> list[tuple[int, int]]:
        answers = []
        with streamq.Client(str(daemon.socket), timeout=30) as c:
            barrier.wait(10)
            for i in range(25):
                n = k * 1000 + i
                rows = c.query("SELECT ? * 2 AS d, (SELECT count(*) FROM processes WHERE pid = 1) AS one", [n])
                answers.append((n, rows[0]["d"], rows[0]["one"]))
        return answers

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    for answers in results:
        assert len(answers) == 25
        assert all(d == 2 * n and one == 1 for n, d, one in answers)


def test_a_client_leaving_mid_reply_does_not_hurt_the_daemon(client, daemon):
    big = orjson.dumps({"id": 1, "sql": _rows(MAX_ROWS, width=200)}) + b"\n"
    for read_first in (0, 4096, 0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(str(daemon.socket))
        s.sendall(big)
        if read_first:
            assert len(s.recv(read_first)) > 0  # the reply (~10 MB) has started
        s.close()
    assert client.query("SELECT 3 AS three") == [{"three": 3}]
    whole = client.request(_rows(MAX_ROWS, width=200))
    assert len(whole.rows) == MAX_ROWS and whole.rows[-1][1] == f"{MAX_ROWS:0200d}"
    assert daemon.proc.poll() is None
    assert "Traceback" not in daemon.stderr()


def test_shell_connect_runs_statements_on_the_daemon(daemon):
    script = "SELECT name FROM streamq_schedule;\nCREATE TABLE t(x);\nSELECT pid FROM streamq_info;\n"
    result = run_cli("shell", "--connect", str(daemon.socket), "--json", input=script)
    assert result.returncode == 1  # a failed statement read from stdin, as sqlite3 does
    assert '"name": "process_count"' in result.stdout
    assert f'"pid": {daemon.proc.pid}' in result.stdout
    assert "line 2: not allowed on the read-only connection" in result.stderr


def test_no_daemon_is_one_line_and_exit_1(root):
    missing = run_cli("query", "--connect", str(root / "absent.sock"), "SELECT 1")
    assert missing.returncode == 1
    assert missing.stderr.startswith("streamq: error: no streamq daemon at") and missing.stderr.count("\n") == 1
    stale_path = root / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(stale_path))
    stale.close()  # the file stays, nobody listens
    result = run_cli("query", "--connect", str(stale_path), "SELECT 1")
    assert result.returncode == 1 and "stale socket" in result.stderr
    shell = run_cli("shell", "--connect", str(root / "absent.sock"), input="SELECT 1;\n")
    assert shell.returncode == 1 and "no streamq daemon at" in shell.stderr
    with pytest.raises(DaemonUnavailable, match="does not exist"):
        streamq.Client(str(root / "absent.sock")).query("SELECT 1")
    usage = run_cli("query", "--connect", str(stale_path), "--follow", "SELECT 1")
    assert usage.returncode == 2


def test_a_second_daemon_removes_a_stale_socket_but_not_a_live_one(daemon, root, request):
    # Stale: a socket file nobody listens on is replaced.
    other_root = Path(tempfile.mkdtemp(prefix="sqctl2", dir=root))
    stale_path = other_root / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(stale_path))
    stale.close()
    second = DaemonProcess(other_root, stale_path, query=False, deadline=60)
    request.addfinalizer(second.stop)
    second.wait_running()
    with streamq.Client(str(stale_path), timeout=30) as c:
        assert c.query("SELECT pid FROM streamq_info") == [{"pid": second.proc.pid}]

    # A request running at SIGTERM is interrupted: it does not hold up the stop.
    outcome: list[Exception] = []

    def endless() -> None:
        with streamq.Client(str(stale_path), timeout=30) as c:
            try:
                c.query(COUNT_FOREVER)
            except streamq.StreamqError as err:
                outcome.append(err)

    worker = threading.Thread(target=endless)
    worker.start()
    time.sleep(0.3)  # let the request reach the SQL thread
    started = time.monotonic()
    second.stop()
    assert second.proc.returncode == 0 and time.monotonic() - started < 3, second.stderr()
    worker.join(10)
    assert outcome and ("stopping" in str(outcome[0]) or isinstance(outcome[0], DaemonUnavailable)), outcome
    assert not stale_path.exists()  # removed at stop

    # Live: a third daemon pointed at the first one's socket runs without a control socket.
    third_root = Path(tempfile.mkdtemp(prefix="sqctl3", dir=root))
    third = DaemonProcess(third_root, daemon.socket, query=False)
    request.addfinalizer(third.stop)
    third.wait_running()
    assert "another streamq daemon answers on" in third.stderr()
    third.stop()
    with streamq.Client(str(daemon.socket), timeout=30) as c:  # still the first daemon's, still there
        assert c.query("SELECT pid FROM streamq_info") == [{"pid": daemon.proc.pid}]


def test_follow_reads_each_new_event_once_and_errors_carry_sqlites_offset(daemon):
    sql = "SELECT pid, path FROM process_events WHERE action = 'exec' AND path LIKE '%/true'"
    [start] = raw_request(daemon.socket, orjson.dumps({"id": 1, "sql": sql, "follow": True}) + b"\n")
    assert start["rows"] == [] and start["columns"] == ["pid", "path"]
    floors = start["follow"]
    assert list(floors) == ["process_events"]
    child = subprocess.run(["/bin/true"], check=True)
    assert child.returncode == 0
    seen: list = []

    def step():
        nonlocal floors
        [reply] = raw_request(daemon.socket, orjson.dumps({"sql": sql, "follow": floors}) + b"\n")
        assert reply["follow"]["process_events"] >= floors["process_events"]
        floors = reply["follow"]
        seen.extend(reply["rows"])
        return seen

    assert retry(step, timeout=10)
    again = raw_request(daemon.socket, orjson.dumps({"sql": sql, "follow": floors}) + b"\n")[0]
    assert again["rows"] == []  # read once: the floors moved past it
    [bad] = raw_request(daemon.socket, b'{"sql": "SELECT hour, nosuch FROM time"}\n')
    assert bad == {"id": None, "error": "no such column: nosuch", "offset": 13}
    [refused] = raw_request(daemon.socket, b'{"sql": "SELECT 1", "follow": {"process_events": "x"}}\n')
    assert refused["error"].startswith('"follow" must be true or an object of event table floors')
