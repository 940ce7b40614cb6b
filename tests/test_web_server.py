"""The web console's server by HTTP, no browser: sessions, bounds, bad input, `streamq serve`, TLS, config.

One daemon (`streamq run` with [web] listen, short sessions, 3 live streams at most, a
small byte cap) serves the module; `streamq serve --connect` is started against its
control socket. Requests go through urllib, as any HTTP client would send them.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from web_console import LINK, ApiClient, WebDaemon, free_port

from conftest import retry, run_cli

CONFIG = """[sources.socket]
[sources.jsonl.app]
path = "{root}/app.jsonl"
time = "ts"
poll_interval = "20ms"
columns = {{ status = "INTEGER" }}
"""
T0 = 1_700_000_000
COUNT = "SELECT status, count(*) AS n FROM app_events GROUP BY status"
WEB = 'session_ttl = "3s"\nmax_streams = 3\nmax_reply_bytes = 200000\ndeadline = "2s"\n'
LISTENERS = "SELECT action, local_port FROM socket_events WHERE action = 'listen'"


@pytest.fixture(scope="module")
def root():
    path = Path(tempfile.mkdtemp(prefix="sqwebs"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def console(root, request):
    (root / "app.jsonl").touch()
    daemon = WebDaemon(root, CONFIG.format(root=root), web=WEB)
    daemon.records = root / "app.jsonl"
    request.addfinalizer(daemon.stop)
    daemon.link = daemon.wait_running()
    return daemon


@pytest.fixture
def api(console):
    return ApiClient(console.origin).login(console.link)


def sse_events(origin: str, path: str, cookie: str, *, until, timeout: float = 10.0) -> list[tuple[str, dict]]:
    """Read a Server-Sent Events stream until ``until(events)`` is true or ``timeout`` passes."""
    host, port = origin.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    events: list[tuple[str, dict]] = []
    name = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(events):
            line = response.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
            elif line == "" and response.fp.closed:
                break
    finally:
        conn.close()
    return events


def cookie_of(api: ApiClient) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in api.jar)


def test_an_expired_or_forged_session_is_refused(console, api):
    assert api.get("/api/session")[0] == 200
    forged = ApiClient(console.origin)
    status, _, body = forged.call("GET", "/api/session", headers={"Cookie": "streamq_session=forged"})
    assert status == 401 and b"not logged in" in body
    status, _, body = forged.call("GET", "/", headers={"Cookie": "streamq_session=forged"})
    assert status == 401 and b"Log in" in body
    assert retry(lambda: api.get("/api/session")[0] == 401, timeout=10)  # session_ttl = 3s


def test_a_wrong_host_header_is_refused(console, api):
    status, _, _ = api.call("GET", "/api/session", headers={"Host": f"rebound.example:{console.port}"})
    assert status == 421


def test_every_answer_carries_a_strict_content_security_policy(console, api):
    for path in ("/", "/static/app.js", "/api/session"):
        _, headers, _ = api.call("GET", path)
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "malformed JSON"), (b"[1]", "expected a JSON object"), (b'{"sql": ""}', '"sql" must be')],
)
def test_bad_request_bodies_get_a_clear_400(api, body, message):
    status, _, data = api.call(
        "POST", "/api/query", body, {"Content-Type": "application/json", "X-CSRF-Token": api.csrf}
    )
    assert status == 400 and message in data.decode()


def test_the_byte_cap_cuts_a_reply_and_says_so(api):
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 50000) SELECT n, printf('%050d', n) FROM r"
    status, reply = api.post("/api/query", {"sql": sql})
    assert status == 200
    assert reply["truncated"] == "bytes"
    assert 0 < len(reply["rows"]) < 50_000
    assert len(json.dumps(reply["rows"], separators=(",", ":"))) <= 200_000
    assert reply["rows"][-1][0] == len(reply["rows"])  # the first rows, in order


def test_a_live_query_must_read_an_event_table(api):
    status, reply = api.post("/api/live", {"sql": "SELECT * FROM time"})
    assert status == 400
    assert "a live query reads an event table" in reply["error"] and "socket_events" in reply["error"]


def test_a_hundred_tabs_following_keep_three_streams_and_the_oldest_are_told(console, api):
    first = api.post("/api/live", {"sql": LISTENERS})[1]["id"]
    opened = [api.post("/api/live", {"sql": LISTENERS})[1]["id"] for _ in range(99)]
    streams = api.get("/api/status")[1]["streams"]
    assert [s["id"] for s in streams] == opened[-3:]
    status, reply = api.get(f"/api/live/{first}")
    assert status == 404 and "no such live stream" in reply["error"]
    # A tab that is reading when newer ones push it out gets the reason as its last event.
    reader = opened[-3]
    import threading

    got: list = []
    thread = threading.Thread(
        target=lambda: got.extend(
            sse_events(
                console.origin, f"/api/live/{reader}", cookie_of(api), until=lambda e: any(n == "end" for n, _ in e)
            )
        )
    )
    thread.start()
    time.sleep(0.3)
    api.post("/api/live", {"sql": LISTENERS})
    thread.join(15)
    assert got[-1][0] == "end"
    assert got[-1][1]["message"] == "closed: 3 live streams at most, and this was the oldest"


def test_a_browser_that_disconnects_mid_stream_frees_its_stream(console, api):
    stream = api.post("/api/live", {"sql": LISTENERS})[1]["id"]
    with socket.create_connection(("127.0.0.1", console.port)) as raw:
        raw.sendall(
            f"GET /api/live/{stream} HTTP/1.1\r\nHost: 127.0.0.1:{console.port}\r\nCookie: {cookie_of(api)}\r\n\r\n".encode()
        )
        assert b"text/event-stream" in raw.recv(4096)
        assert stream in [s["id"] for s in api.get("/api/status")[1]["streams"]]
    assert retry(lambda: stream not in [s["id"] for s in api.get("/api/status")[1]["streams"]], timeout=10)


def test_live_rows_arrive_as_server_sent_events(console, api):
    stream = api.post("/api/live", {"sql": LISTENERS})[1]
    assert stream["columns"] == ["action", "local_port"] and stream["tables"] == ["socket_events"]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        events = sse_events(
            console.origin,
            f"/api/live/{stream['id']}",
            cookie_of(api),
            until=lambda e: any(["listen", port] in d.get("rows", []) for _, d in e),
        )
    finally:
        listener.close()
    assert any(["listen", port] in d.get("rows", []) for _, d in events)


# -- streamq serve --connect ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(console, root, request):
    port = free_port()
    log = root / "serve.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            # The daemon's own config: serve takes its [web] limits (the small byte cap), and --web its address.
            [
                sys.executable,
                "-m",
                "streamq",
                "serve",
                "-c",
                str(console.dir / "streamq.toml"),
                "--connect",
                str(console.socket),
                "--web",
                f"127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

    def stop():
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    request.addfinalizer(stop)
    assert retry(lambda: LINK.search(log.read_text()) or proc.poll() is not None, timeout=20), log.read_text()
    assert proc.poll() is None, log.read_text()
    return ApiClient(f"http://127.0.0.1:{port}").login(LINK.search(log.read_text()).group(1))


def test_serve_answers_queries_through_the_daemons_control_socket(served, console):
    assert served.get("/api/session")[1]["serving"] == f"daemon at {console.socket}"
    status, reply = served.post("/api/query", {"sql": "SELECT pid, mode FROM streamq_info"})
    assert status == 200 and reply["rows"] == [[console.proc.pid, "daemon"]]
    status, reply = served.post("/api/query", {"sql": "SELECT hour, nosuch FROM time"})
    assert (status, reply["error"]) == (400, "no such column: nosuch")
    assert reply["offset"] == 13  # SQLite's place for the mistake, passed on by the control socket


def test_serve_follows_the_daemons_rings(served):
    stream = served.post("/api/live", {"sql": LISTENERS})[1]
    assert stream["tables"] == ["socket_events"]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        events = sse_events(
            served.origin,
            f"/api/live/{stream['id']}",
            cookie_of(served),
            until=lambda e: any(["listen", port] in d.get("rows", []) for _, d in e),
        )
    finally:
        listener.close()
    assert any(["listen", port] in d.get("rows", []) for _, d in events)


def test_serve_sends_the_consoles_byte_cap_with_each_query(served):
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 50000) SELECT n, printf('%050d', n) FROM r"
    status, reply = served.post("/api/query", {"sql": sql})
    assert status == 200 and reply["truncated"] == "bytes"  # [web] max_reply_bytes, under the daemon's [control]
    assert 0 < len(reply["rows"]) < 50_000 and reply["rows"][-1][0] == len(reply["rows"])
    assert len(json.dumps(reply["rows"], separators=(",", ":"))) <= 200_000


@pytest.mark.parametrize("where", ["daemon", "serve"])
def test_a_windowed_live_query_streams_each_windows_count_once_final(console, api, served, where):
    client = api if where == "daemon" else served
    status, stream = client.post("/api/live", {"sql": COUNT, "window": "tumble 10s", "grace": "", "dedup": None})
    assert status == 200, stream
    assert stream["columns"] == ["status", "n", "window_start", "window_end"] and stream["window"] == "tumble 10s"
    base = T0 + (0 if where == "daemon" else 1000)
    records = [{"ts": base + i * 0.5, "status": (200, 404, 200)[i % 3]} for i in range(50)]  # to 24.5 s
    holder: list = []
    reader = threading.Thread(
        target=lambda: sse_events(
            client.origin,
            f"/api/live/{stream['id']}",
            cookie_of(client),
            until=lambda e: holder.append(e) or any(name == "end" for name, _ in e),
            timeout=30,
        )
    )
    reader.start()
    time.sleep(0.3)  # the browser's side is connected before the rows come (they would wait for it anyway)
    with open(console.records, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))

    def rows(kind: str) -> list:
        events = holder[-1] if holder else []
        return [row for name, d in events if name == "rows" for row, k in zip(d["rows"], d["kinds"]) if k == kind]

    assert retry(lambda: len(rows("final")) == 4, timeout=10)  # two windows closed, two statuses each
    assert client.post(f"/api/live/{stream['id']}/end", {}, csrf=False)[0] == 403  # a POST like any other
    assert client.post(f"/api/live/{stream['id']}/end", {})[0] == 200
    reader.join(15)
    truth = Counter((int(r["ts"] // 10 * 10), r["status"]) for r in records)
    assert Counter({(ws, s): n for s, n, ws, we in rows("final")}) == truth and len(rows("final")) == len(truth)
    assert rows("update") == []  # emit close: finals only
    assert holder[-1][-1] == ("end", holder[-1][-1][1]) and holder[-1][-1][1]["message"].startswith("ended")


def test_serve_shows_query_follows_error_for_a_bad_window(api, served):
    status, here = api.post("/api/live", {"sql": COUNT, "window": "session 0s"})
    assert (
        status == 400
        and here["error"] == "session gap: expected a duration above zero, like '500ms', '30s' or '1m' (got '0s')"
    )
    assert served.post("/api/live", {"sql": COUNT, "window": "session 0s"}) == (400, here)
    status, reply = served.post("/api/live", {"sql": COUNT})  # no window: checked in the daemon, the same line
    assert status == 400 and reply["error"] == api.post("/api/live", {"sql": COUNT})[1]["error"]
    assert '--window "tumble 1m"' in reply["error"]


def test_serve_without_a_daemon_says_so_in_one_line(root):
    result = run_cli("serve", "--connect", str(root / "nobody.sock"), "--web", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr.startswith("streamq: error: no streamq daemon at") and result.stderr.count("\n") == 1


def test_serve_connect_to_a_path_that_is_not_a_socket_says_so(root):
    plain = root / "plain.sock"
    plain.write_text("")
    result = run_cli("serve", "--connect", str(plain), "--web", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr == (
        f"streamq: error: {plain} is not a socket: --connect takes the daemon's control socket ([control] path)\n"
    )


# -- config and TLS -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ('listen = "0.0.0.0:8765"', "0.0.0.0 is not a loopback address: set allow_remote = true"),
        ('listen = "0.0.0.0:8765"\nallow_remote = true', "needs TLS: set cert and key"),
        ('listen = "nonsense"', "is not an address like 127.0.0.1:8765"),
        ('listen = "127.0.0.1:8765"\ncert = "/x.pem"', "set cert and key together"),
    ],
)
def test_unsafe_or_bad_web_config_is_refused_with_the_key(tmp_path, web, message):
    path = tmp_path / "c.toml"
    path.write_text(f"[web]\n{web}\n")
    result = run_cli("run", "--check", "-c", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "web" in result.stderr


def test_run_web_flag_is_checked_like_the_config(tmp_path):
    result = run_cli("run", "--check", "--web", "192.0.2.1:8765")
    assert result.returncode == 2
    assert result.stderr == (
        "streamq: error: --web: 192.0.2.1 is not a loopback address: set allow_remote = true (and cert, key) to serve it\n"
    )
    empty = run_cli("run", "--check", "--web", "")  # not taken as "no --web"
    assert (empty.returncode, empty.stderr) == (2, "streamq: error: --web: '' is not an address like 127.0.0.1:8765\n")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_with_a_token_file_and_a_secure_cookie(root, request):
    cert, key = _self_signed(root)
    token = root / "web.token"
    token.write_text("a-token-of-sufficient-length\n")
    daemon = WebDaemon(root, "", web=f'cert = "{cert}"\nkey = "{key}"\ntoken_file = "{token}"\n', name="tls")
    request.addfinalizer(daemon.stop)
    link = daemon.wait_running()
    assert link == f"https://127.0.0.1:{daemon.port}/"  # the token is in the file, not in the log
    assert "a-token-of-sufficient-length" not in daemon.stderr()
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("127.0.0.1", daemon.port, context=context, timeout=10)
    conn.request("GET", "/?token=a-token-of-sufficient-length")
    response = conn.getresponse()
    assert response.status == 303
    cookie = response.getheader("Set-Cookie")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    conn.close()


def test_the_cold_start_of_other_commands_imports_no_web_code():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "streamq", "query", "SELECT * FROM time"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "streamq.sql.connection" in imported
    assert not {
        m for m in imported if m.split(".")[0] in ("aiohttp", "multidict", "yarl") or m.startswith("streamq.web")
    }
