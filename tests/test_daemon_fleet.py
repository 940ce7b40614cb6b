"""Fleet queries over MQTT v5: three daemons (hosts a, b, c) and one private mosquitto.

Each daemon is `python -m streamq run -c <cfg>` in its own directory (state, control
socket), with a [fleet] section; the CLI (`streamq fleet ...`) is the client. The
protocol's edges (replay, stale timestamp, wrong target, swapped response topic) are
driven with a raw aiomqtt v5 client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from daemon_process import DaemonDir, short_tmp
from mqtt_broker import mosquitto  # noqa: F401  (the fixture)

from conftest import retry, run_cli
from streamq.daemon import fleet_protocol

KEY = "fleet test key"
MAX_ROWS = 100
FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


class FleetDaemon(DaemonDir):
    def __init__(self, root: Path, host: str, broker_url: str, extra: str = "") -> None:
        self.host = host
        directory = root / host
        super().__init__(
            directory,
            f"""
[host]
identifier = "{host}"
[state]
path = "{directory}/state.db"
[control]
path = "{directory}/run/control.sock"
max_rows = {MAX_ROWS}
deadline = "1s"
[fleet]
url = "{broker_url}"
key = "{KEY}"
{extra}
""",
        )

    def wait_answering(self) -> None:
        self.wait_for("fleet: answering", timeout=15)


@pytest.fixture(scope="module")
def root():
    yield from short_tmp("sqfleet")


@pytest.fixture(scope="module")
def daemons(root, mosquitto, request):  # noqa: F811
    started: list[FleetDaemon] = []
    request.addfinalizer(lambda: [d.stop() for d in started])
    for host in "abc":
        started.append(FleetDaemon(root, host, mosquitto.url))
    for d in started:
        d.wait_answering()
    return started


def fleet_cli(broker, *args: str, key: str | None = KEY):
    keyargs = ("--key", key) if key is not None else ()
    return run_cli("fleet", "query", "--broker", broker.url, "--json", *keyargs, *args)


def test_fleet_query_reaches_every_daemon_and_each_answers_for_itself(daemons, mosquitto):  # noqa: F811
    result = fleet_cli(mosquitto, "SELECT host_identifier, pid FROM streamq_info")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["host"], r["host_identifier"]) for r in rows] == [("a", "a"), ("b", "b"), ("c", "c")]
    assert sorted(r["pid"] for r in rows) == sorted(d.proc.pid for d in daemons)


def test_per_host_query_reaches_only_that_host(daemons, mosquitto):  # noqa: F811
    result = fleet_cli(mosquitto, "--host", "b", "SELECT host_identifier FROM streamq_info")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"host": "b", "host_identifier": "b"}]
    two = fleet_cli(mosquitto, "--host", "c", "--host", "a", "SELECT host_identifier FROM streamq_info")
    assert two.returncode == 0, two.stderr
    assert [r["host_identifier"] for r in json.loads(two.stdout)] == ["a", "c"]


def test_pretty_output_has_a_host_column(daemons, mosquitto):  # noqa: F811
    result = run_cli("fleet", "query", "--broker", mosquitto.url, "--key", KEY, "SELECT 40 + 2 AS answer")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split("|")[1:3] == [" host ", " answer "]
    assert [line.split("|")[1].strip() for line in lines[3:-1]] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        ("ATTACH DATABASE '/tmp/sqfleet-attach.db' AS x", "ATTACH"),
        ("INSERT INTO time (hour) VALUES (1)", "INSERT"),
        ("PRAGMA user_version = 7", "PRAGMA user_version"),
        ("SELECT load_extension('/nonexistent/evil.so')", "load_extension"),
    ],
)
def test_writes_and_extensions_are_refused_with_an_error_reply(daemons, mosquitto, sql, refusal):  # noqa: F811
    result = fleet_cli(mosquitto, sql)
    assert result.returncode == 1
    assert json.loads(result.stdout) == []
    for host in "abc":
        assert f"streamq: {host}: error: " in result.stderr
    assert result.stderr.count(refusal) == 3, result.stderr
    assert not Path("/tmp/sqfleet-attach.db").exists()


def test_unsigned_and_wrongly_signed_requests_are_refused(daemons, mosquitto):  # noqa: F811
    unsigned = fleet_cli(mosquitto, "SELECT 1", key=None)
    assert unsigned.returncode == 1
    assert unsigned.stderr.count("unsigned request refused") == 3, unsigned.stderr
    wrong = fleet_cli(mosquitto, "SELECT 1", key="not the key")
    assert wrong.returncode == 1
    assert wrong.stderr.count("bad signature") == 3, wrong.stderr


def test_streamq_fleet_counts_requests_and_refusals(daemons, mosquitto):  # noqa: F811
    def counts() -> dict:
        result = fleet_cli(mosquitto, "--host", "a", "SELECT broker, requests, refused FROM streamq_fleet")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]

    before = counts()
    assert before["broker"] == mosquitto.url and before["requests"] >= 1
    assert fleet_cli(mosquitto, "--host", "a", "SELECT 1", key="not the key").returncode == 1
    after = counts()
    assert after["refused"] == before["refused"] + 1
    assert after["requests"] == before["requests"] + 2  # the refused one and the query that counted it


def test_a_query_that_never_ends_hits_the_deadline(daemons, mosquitto):  # noqa: F811
    started = time.monotonic()
    result = fleet_cli(mosquitto, "--host", "a", FOREVER)
    assert result.returncode == 1
    assert "a: error: query interrupted: it ran past its 1s deadline" in result.stderr
    assert time.monotonic() - started < 4.5  # the 1 s cap, not the client's 5 s timeout
    after = fleet_cli(mosquitto, "--host", "a", "SELECT 1 AS one")  # and the daemon still answers
    assert json.loads(after.stdout) == [{"host": "a", "one": 1}]


def test_the_row_cap_truncates_and_says_so(daemons, mosquitto):  # noqa: F811
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) SELECT n FROM r"
    result = fleet_cli(mosquitto, "--host", "c", sql)
    assert result.returncode == 0, result.stderr
    assert [r["n"] for r in json.loads(result.stdout)] == list(range(1, MAX_ROWS + 1))
    assert f"c: warning: its row cap cut the result at {MAX_ROWS} rows" in result.stderr


def test_fleet_hosts_lists_the_three_online(daemons, mosquitto):  # noqa: F811
    result = run_cli("fleet", "hosts", "--broker", mosquitto.url, "--json")
    assert result.returncode == 0, result.stderr
    statuses = {r["host"]: r["status"] for r in json.loads(result.stdout)}
    assert {h: statuses.get(h) for h in "abc"} == {"a": "online", "b": "online", "c": "online"}


def test_a_stopped_daemon_goes_offline_and_is_reported_as_not_answering(daemons, mosquitto, root):  # noqa: F811
    d = FleetDaemon(root, "d", mosquitto.url)
    try:
        d.wait_answering()
        assert _statuses(mosquitto).get("d") == "online"
        d.stop()
        assert d.proc.returncode == 0, d.stderr()
        assert _statuses(mosquitto).get("d") == "offline"
        everyone = fleet_cli(mosquitto, "--timeout", "2", "SELECT host_identifier FROM streamq_info")
        assert everyone.returncode == 0, everyone.stderr  # an offline host is not expected to answer
        assert [r["host"] for r in json.loads(everyone.stdout)] == ["a", "b", "c"]
        assert "d: no answer (status: offline)" in everyone.stderr
        named = fleet_cli(mosquitto, "--timeout", "1", "--host", "a", "--host", "d", "SELECT 1 AS one")
        assert named.returncode == 1  # a named host that does not answer is a failure
        assert json.loads(named.stdout) == [{"host": "a", "one": 1}]
        assert "d: no answer (status: offline)" in named.stderr
    finally:
        d.stop()


def _retain_status(broker, host: str, status: str | None) -> None:
    """A retained status for ``host``, as a daemon's will leaves it; None forgets the host."""
    payload = ["-m", status] if status is not None else ["-n"]
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", f"streamq/{host}/status", "-r", *payload]
    subprocess.run(cmd, check=True, timeout=10)


def test_fleet_query_does_not_wait_for_hosts_that_cannot_answer(daemons, mosquitto):  # noqa: F811
    for host in ("gone1", "gone2"):
        _retain_status(mosquitto, host, "offline")
    try:
        started = time.monotonic()
        everyone = fleet_cli(mosquitto, "--timeout", "20", "SELECT 1 AS one")
        assert everyone.returncode == 0, everyone.stderr
        assert [r["host"] for r in json.loads(everyone.stdout)] == ["a", "b", "c"]
        named = fleet_cli(mosquitto, "--timeout", "20", "--host", "gone1", "--host", "gone2", "SELECT 1")
        assert named.returncode == 1
        assert "gone1: no answer (status: offline)" in named.stderr
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"waited {elapsed:.1f}s for hosts that cannot answer"  # each would wait 20 s before
    finally:
        for host in ("gone1", "gone2"):
            _retain_status(mosquitto, host, None)


def test_a_killed_daemon_goes_offline_through_its_will(daemons, mosquitto, root):  # noqa: F811
    e = FleetDaemon(root, "e", mosquitto.url)
    try:
        e.wait_answering()
        assert _statuses(mosquitto).get("e") == "online"
        e.stop(signal.SIGKILL)
        assert retry(lambda: _statuses(mosquitto).get("e") == "offline", timeout=10)
    finally:
        e.stop()


def _statuses(broker) -> dict[str, str]:
    result = run_cli("fleet", "hosts", "--broker", broker.url, "--json")
    assert result.returncode == 0, result.stderr
    return {r["host"]: r["status"] for r in json.loads(result.stdout)}


# -- the protocol's edges, with a raw MQTT v5 client ---------------------------------------------


async def _ask(broker, bodies: list[tuple[str, dict]], *, reply_to: str, response_topic: str | None = None):
    """Publish each (topic, body) with ``response_topic`` (default reply_to); the replies in order."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    replies = []
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(response_topic or reply_to, qos=1)
        for topic, body in bodies:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = response_topic or reply_to
            props.CorrelationData = b"corr-" + body["id"].encode()
            await client.publish(topic, json.dumps(body), qos=1, properties=props)
            async with asyncio.timeout(5):
                message = await anext(aiter(client.messages))
            assert message.properties.CorrelationData == props.CorrelationData
            replies.append(json.loads(message.payload))
    return replies


def _signed(sql: str, target: str, reply_to: str, **kw) -> dict:
    return fleet_protocol.make_request(sql, target=target, reply_to=reply_to, key=KEY.encode(), **kw)


async def test_replayed_stale_misdirected_and_redirected_requests_are_refused(daemons, mosquitto):  # noqa: F811
    reply_to = f"streamq/fleet/reply/test-{uuid.uuid4().hex}"
    a_topic = "streamq/a/query"
    good = _signed("SELECT 7 AS seven", "a", reply_to)
    stale = _signed("SELECT 1", "a", reply_to, now=time.time() - 120)
    misdirected = _signed("SELECT 1", "b", reply_to)  # signed for b, sent to a
    fleetwide_as_host = _signed("SELECT 1", "a", reply_to)  # for a, sent to everyone: b and c refuse too
    replies = await _ask(
        mosquitto, [(a_topic, good), (a_topic, good), (a_topic, stale), (a_topic, misdirected)], reply_to=reply_to
    )
    assert replies[0] == {"host": "a", "id": good["id"], "columns": ["seven"], "rows": [[7]], "truncated": False}
    assert replies[1] == {"host": "a", "id": good["id"], "error": "replayed request (its id was seen already)"}
    assert "timestamp" in replies[2]["error"]
    assert replies[3]["error"] == "request for 'b' arrived on streamq/a/query"
    [first] = await _ask(mosquitto, [(fleet_protocol.FLEET_TOPIC, fleetwide_as_host)], reply_to=reply_to)
    assert "arrived on streamq/fleet/query" in first["error"]

    # Signed for one response topic, replayed (fresh id: not a replay) with another.
    other = f"streamq/fleet/reply/thief-{uuid.uuid4().hex}"
    redirected = _signed("SELECT 1", "a", reply_to)
    [stolen] = await _ask(mosquitto, [(a_topic, redirected)], reply_to=reply_to, response_topic=other)
    assert stolen == {
        "host": "a",
        "id": redirected["id"],
        "error": "the response topic is not the one the request was signed with",
    }

    # A float, a field the protocol does not know: refused before any signature check.
    floaty = dict(_signed("SELECT 1", "a", reply_to), ts=time.time())
    [refused] = await _ask(mosquitto, [(a_topic, floaty)], reply_to=reply_to)
    assert refused["error"] == "'ts' must be an integer"


def test_the_signed_bytes_are_the_documented_canonical_json():
    body = {"v": 1, "id": "r1", "sql": "SELECT 'é'", "target": "*", "ts": 1700000000, "reply_to": "x/y", "sig": "z"}
    expected = b'{"id":"r1","reply_to":"x/y","sql":"SELECT \'\xc3\xa9\'","target":"*","ts":1700000000,"v":1}'
    assert fleet_protocol.canonical(body) == expected
    assert fleet_protocol.signature(body, b"k") == hmac.new(b"k", expected, hashlib.sha256).hexdigest()
    verifier = fleet_protocol.Verifier("h", b"k", max_age=30)
    signed = fleet_protocol.make_request("SELECT 1", target="*", reply_to="r", key=b"k", now=1700000000)
    verifier.check(signed, fleet_protocol.FLEET_TOPIC, "r", now=1700000010)  # accepted: no exception
    with pytest.raises(fleet_protocol.FleetError, match="bad signature"):
        verifier.check(dict(signed, sql="SELECT 2"), fleet_protocol.FLEET_TOPIC, "r", now=1700000010)


def test_allow_unsigned_accepts_unsigned_but_never_a_bad_signature():
    verifier = fleet_protocol.Verifier("h", b"k", allow_unsigned=True)
    unsigned = fleet_protocol.make_request("SELECT 1", target="h", reply_to="r", key=None)
    verifier.check(unsigned, "streamq/h/query", "r")
    with pytest.raises(fleet_protocol.FleetError, match="bad signature"):
        verifier.check(dict(unsigned, sig="00" * 32), "streamq/h/query", "r")


def test_fleet_config_mistakes_name_the_key(tmp_path):
    cases = {
        '[fleet]\nurl = "mqtt://127.0.0.1:1"\n': "fleet: set key or key_file",
        '[fleet]\nkey = "k"\n': "fleet: missing required key 'url'",
        '[fleet]\nurl = "http://x"\nkey = "k"\n': "fleet.url:",
        '[fleet]\nurl = "mqtt://h:1"\nkey = "k"\nkey_file = "/etc/hostname"\n': "set key or key_file, not both",
        f'[fleet]\nurl = "mqtt://h:1"\nkey_file = "{tmp_path}/none"\n': "fleet.key_file: cannot read",
    }
    for text, message in cases.items():
        cfg = tmp_path / "c.toml"
        cfg.write_text(text)
        result = run_cli("run", "--check", "-c", str(cfg))
        assert result.returncode == 2, (text, result.stderr)
        assert message in result.stderr, (text, result.stderr)
    (tmp_path / "key").write_text("  the key\n")
    cfg.write_text(f'[fleet]\nurl = "mqtt://h:1"\nkey_file = "{tmp_path}/key"\n')
    assert run_cli("run", "--check", "-c", str(cfg)).returncode == 0


def test_no_broker_is_one_line_and_exit_1(tmp_path):
    from mqtt_broker import free_port

    result = run_cli("fleet", "hosts", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--timeout", "2")
    assert result.returncode == 1
    assert result.stderr.startswith("streamq: error: cannot reach MQTT broker mqtt://127.0.0.1:")
    assert len(result.stderr.splitlines()) == 1
    usage = run_cli("fleet", "query", "SELECT 1")
    assert usage.returncode == 2 and "--broker" in usage.stderr


def test_the_documented_test_vector_verifies():
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "fleet.md").read_text()
    match = re.search(r"\n(\{\"deadline_ms\".*\})\nsig = ([0-9a-f]{64})\n", text)
    assert match, "the test vector is missing from docs/fleet.md"
    body, sig = json.loads(match.group(1)), match.group(2)
    assert fleet_protocol.canonical(body) == match.group(1).encode()
    assert fleet_protocol.signature(body, b"shared secret") == sig
    fleet_protocol.Verifier("web1", b"shared secret").check(
        dict(body, sig=sig), fleet_protocol.FLEET_TOPIC, body["reply_to"], now=body["ts"] + 1
    )
