"""curl, curl_certificate and prometheus_metrics against HTTP(S) servers the tests start on free ports."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time

import pytest

from conftest import run_cli
from streamq.tables import web

METRICS = """# HELP requests_total Requests served.
# TYPE requests_total counter
requests_total{method="get",code="200"} 1027
requests_total{method="post",code="500"} 3
# TYPE temperature gauge
temperature 21.5
"""


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/metrics":
            body, status = METRICS.encode(), 200
        elif self.path == "/agent":
            body, status = self.headers.get("User-Agent", "").encode(), 200
        elif self.path == "/missing":
            body, status = b"no such thing", 404
        else:
            body, status = "héllo streamq\n".encode(), 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(context: ssl.SSLContext | None = None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def http_url():
    server, thread = _serve()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_curl_fetches_a_local_server(conn, http_url):
    (row,) = conn.query("SELECT * FROM curl WHERE url = ?", (http_url + "/",))
    body = "héllo streamq\n"
    assert (row["response_code"], row["result"], row["bytes"], row["method"]) == (200, body, len(body.encode()), "GET")
    assert 0 < row["round_trip_time"] < 5_000_000
    (agent,) = conn.query("SELECT result, user_agent FROM curl WHERE url = ?", (http_url + "/agent",))
    assert agent == {"result": "osquery", "user_agent": "osquery"}
    (custom,) = conn.query("SELECT result FROM curl WHERE url = ? AND user_agent = 'probe/1'", (http_url + "/agent",))
    assert custom["result"] == "probe/1"
    (missing,) = conn.query("SELECT response_code FROM curl WHERE url = ?", (http_url + "/missing",))
    assert missing["response_code"] == 404


def test_curl_of_a_closed_port_is_quick_and_keeps_osquerys_row(conn):
    # osquery answers a request that failed with its url, method and user_agent, and no response.
    start = time.monotonic()
    rows = conn.query("SELECT * FROM curl WHERE url = 'http://127.0.0.1:1/'")
    assert time.monotonic() - start < web.CURL_TIMEOUT + 1
    assert rows == [
        {
            "url": "http://127.0.0.1:1/",
            "method": "GET",
            "user_agent": "osquery",
            "response_code": None,
            "round_trip_time": None,
            "bytes": None,
            "result": None,
        }
    ]


def test_prometheus_metrics_of_one_target(conn, http_url):
    target = http_url + "/metrics"
    before = int(time.time() * 1000)
    rows = conn.query("SELECT * FROM prometheus_metrics WHERE target_name = ?", (target,))
    assert [(r["metric_name"], r["metric_value"]) for r in rows] == [
        ('requests_total{method="get",code="200"}', 1027.0),
        ('requests_total{method="post",code="500"}', 3.0),
        ("temperature", 21.5),
    ]
    assert {r["target_name"] for r in rows} == {target}
    assert all(before <= r["timestamp_ms"] <= int(time.time() * 1000) for r in rows)


def test_prometheus_targets_from_config(conn, http_url):
    web.configure_prometheus([http_url + "/metrics"], timeout=2)
    try:
        rows = conn.query("SELECT metric_name FROM prometheus_metrics")
        assert "temperature" in {r["metric_name"] for r in rows}
    finally:
        web.configure_prometheus([], timeout=1)
    assert conn.query("SELECT * FROM prometheus_metrics") == []


def test_query_and_shell_with_a_config_read_its_targets_and_docker_socket(http_url, tmp_path):
    # `streamq query -c FILE` (and `shell -c FILE`) hand the tables their sections as `run` does:
    # [prometheus_targets] are scraped, and [docker] socket is the engine asked.
    config = tmp_path / "streamq.toml"
    config.write_text(
        f'[state]\npath = "{tmp_path}/state.db"\n'
        f'[prometheus_targets]\nurls = ["{http_url}/metrics"]\ntimeout = 2\n'
        f'[docker]\nsocket = "{tmp_path}/absent.sock"\n'
    )
    sql = "SELECT metric_name FROM prometheus_metrics WHERE metric_name = 'temperature'"
    result = run_cli("query", "-c", str(config), "--json", sql)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"metric_name": "temperature"}]
    result = run_cli("shell", "-c", str(config), input="SELECT count(*) AS n FROM docker_info;\n")
    assert result.returncode == 0, result.stderr
    assert "absent.sock" in result.stderr and "docker_* tables return no rows" in result.stderr


# --- curl_certificate ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
            "-subj", "/CN=streamq.test/O=Streamq Tests/OU=Tables",
            "-addext", "subjectAltName=DNS:streamq.test,DNS:localhost,IP:127.0.0.1",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext", "extendedKeyUsage=serverAuth,clientAuth",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def tls_host(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    server, thread = _serve(context)
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _openssl(cert, *args: str) -> str:
    return subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", *args], capture_output=True, text=True, check=True
    ).stdout


def _extension(text: str, title: str) -> str:
    """The value lines under an extension's title in `openssl x509 -text`, joined by ";"."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(title):
            values = []
            for value in lines[i + 1 :]:
                if not value.startswith(" " * 16):
                    break
                values.append(value.strip())
            return ";".join(values)
    return ""


def test_curl_certificate_matches_openssl(conn, tls_host, certificate):
    cert = certificate[0]
    (row,) = conn.query(
        "SELECT *, pem, timeout FROM curl_certificate WHERE hostname = ? AND dump_certificate = 1", (tls_host,)
    )
    text = _openssl(cert, "-text")
    assert (row["common_name"], row["organization"], row["organization_unit"]) == (
        "streamq.test",
        "Streamq Tests",
        "Tables",
    )
    assert row["issuer_common_name"] == "streamq.test"
    assert row["serial_number"] == _openssl(cert, "-serial").strip().split("=")[1].lstrip("0")
    assert row["valid_from"] == _openssl(cert, "-startdate").strip().split("=")[1]
    assert row["valid_to"] == _openssl(cert, "-enddate").strip().split("=")[1]
    assert (
        row["sha256_fingerprint"]
        == _openssl(cert, "-fingerprint", "-sha256").split("=")[1].strip().replace(":", "").lower()
    )
    assert (
        row["sha1_fingerprint"]
        == _openssl(cert, "-fingerprint", "-sha1").split("=")[1].strip().replace(":", "").lower()
    )
    assert row["signature_algorithm"] == "RSA-SHA256" and "sha256WithRSAEncryption" in text
    assert row["version"] == 3 and row["has_expired"] == 0
    for column, title in (
        ("subject_alternative_names", "X509v3 Subject Alternative Name"),
        ("key_usage", "X509v3 Key Usage"),
        ("extended_key_usage", "X509v3 Extended Key Usage"),
        ("subject_key_identifier", "X509v3 Subject Key Identifier"),
        ("authority_key_identifier", "X509v3 Authority Key Identifier"),
        ("basic_constraint", "X509v3 Basic Constraints"),
    ):
        assert row[column] == _extension(text, title), column
    assert row["pem"].strip() == cert.read_text().strip()
    assert row["timeout"] == web.CERT_TIMEOUT


def test_curl_certificate_of_a_closed_port_is_empty(conn):
    assert conn.query("SELECT * FROM curl_certificate WHERE hostname = '127.0.0.1:1' AND timeout = 1") == []
