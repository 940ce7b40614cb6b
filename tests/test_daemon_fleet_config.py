"""Fleet config: signed fragments pushed over a private mosquitto to three daemons (hosts a, b, c).

Each daemon is `python -m streamq run` in its own directory, with [fleet] accept_config,
a file sink, and a local label `web` that matches while the file <dir>/web exists (the
real `file` table decides). The CLI (`streamq fleet push|status`) is the pushing side;
forged, tampered and replayed fragments are published raw with aiomqtt. What each
daemon runs is read over its control socket (streamq_schedule, streamq_fleet_config).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path

import pytest
from daemon_process import DaemonDir, short_tmp
from mqtt_broker import MOSQUITTO, mosquitto, start_broker  # noqa: F401  (the fixture)

from conftest import ROOT, retry, run_cli
from streamq.client import Client
from streamq.daemon import fleet_protocol, fleet_push

KEY = "fleet config test key"
STABLE = "SELECT 'a' AS v UNION ALL SELECT 'b'"  # the same two rows every run: a diff query adds them once


class ConfigDaemon(DaemonDir):
    def __init__(self, root: Path, host: str, broker_url: str) -> None:
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
[sinks.out]
type = "file"
path = "{directory}/out.jsonl"
[sinks.mq]
type = "mqtt"
url = "{broker_url}"
[labels.web]
sql = "SELECT 1 FROM file WHERE path = '{directory}/web'"
interval = "250ms"
[fleet]
url = "{broker_url}"
key = "{KEY}"
accept_config = true
""",
        )

    def wait_answering(self) -> None:
        self.wait_for("fleet: answering", timeout=20)

    def query(self, sql: str) -> list[dict]:
        with Client(str(self.dir / "run/control.sock")) as client:
            return client.query(sql)

    def scheduled(self, prefix: str) -> list[str]:
        rows = self.query("SELECT name FROM streamq_schedule")
        return sorted(r["name"] for r in rows if r["name"].startswith(prefix + "/"))

    def fragment(self, name: str) -> dict | None:
        rows = self.query(f"SELECT * FROM streamq_fleet_config WHERE name = '{name}'")
        return rows[0] if rows else None

    def lines(self, query: str) -> list[dict]:
        path = self.dir / "out.jsonl"
        if not path.exists():
            return []
        out = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [line for line in out if line.get("name") == query]


@pytest.fixture(scope="module")
def root():
    yield from short_tmp("sqfcfg")


@pytest.fixture(scope="module")
def daemons(root, mosquitto, request):  # noqa: F811
    started: list[ConfigDaemon] = []
    request.addfinalizer(lambda: [d.stop() for d in started])
    for host in "abc":
        started.append(ConfigDaemon(root, host, mosquitto.url))
    for d in started:
        d.wait_answering()
    # Each has reported (it has a retained report) before the tests push anything.
    assert retry(lambda: len(json.loads(status(mosquitto).stdout or "[]")) == 3, timeout=10)
    return started


def fragment_file(root: Path, text: str) -> str:
    path = root / f"fragment-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(text)
    return str(path)


def push(broker, name: str, *args: str, key: str = KEY, timeout: float = 10):
    """`streamq fleet push ... NAME ARGS` (the fragment file, when there is one, first in ARGS)."""
    return run_cli("fleet", "push", "--broker", broker.url, "--key", key, "--timeout", str(timeout), name, *args)


def push_wait(broker, root: Path, name: str, text: str, *args: str):
    result = push(broker, name, fragment_file(root, text), "--wait", "--json", *args)
    return result, json.loads(result.stdout) if result.stdout.strip() else []


def status(broker):
    return run_cli("fleet", "status", "--broker", broker.url, "--json")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def query_toml(**queries: str) -> str:
    return "".join(f'[queries.{q}]\nsql = "{sql}"\ninterval = "200ms"\n' for q, sql in queries.items())


# -- reaching hosts --------------------------------------------------------------------------------


def test_a_push_reaches_all_three_within_2s(daemons, mosquitto, root):  # noqa: F811
    # Timed in process: from connecting to the broker until all three reported the version applied
    # (the CLI adds its Python start, 0.25-0.5 s here; the tests below use the CLI).
    name = unique("all")
    started = time.monotonic()
    result = asyncio.run(
        fleet_push.push(
            mosquitto.url,
            name,
            key=KEY.encode(),
            toml=query_toml(one=STABLE, two="SELECT 2 AS n"),
            wait=True,
            timeout=2.0,
        )
    )
    elapsed = time.monotonic() - started
    assert {h: (e["state"], e["version"]) for h, e in result.done.items()} == {h: ("applied", 1) for h in "abc"}
    assert result.complete and elapsed < 2.0, f"{elapsed:.2f}s, missing {result.missing}"
    for d in daemons:
        assert d.scheduled(name) == [f"{name}/one", f"{name}/two"]
        row = d.fragment(name)
        assert (row["version"], row["state"], row["applied_version"], row["queries"]) == (1, "applied", 1, 2)
        assert retry(lambda d=d: f"fleet config: running {name} v1" in d.stderr()), d.stderr()  # the log says so too
        # The fragment's query runs as the config file's would: its rows reach the host's sink.
        assert retry(lambda d=d: len(d.lines(f"{name}/one")) == 2, timeout=5), d.stderr()
        assert {line["columns"]["v"] for line in d.lines(f"{name}/one")} == {"a", "b"}


def test_a_label_push_reaches_only_the_matching_host_and_follows_membership(daemons, mosquitto, root):  # noqa: F811
    a, b, c = daemons
    (a.dir / "web").touch()
    assert retry(lambda: a.query("SELECT member FROM streamq_fleet_labels WHERE name = 'web'") == [{"member": 1}])
    name = unique("web")
    result, rows = push_wait(mosquitto, root, name, query_toml(ports=STABLE), "--label", "web")
    assert result.returncode == 0, result.stderr
    states = {r["host"]: (r["state"], r["reason"]) for r in rows}
    assert states == {
        "a": ("applied", None),
        "b": ("skipped", "label 'web' does not match"),
        "c": ("skipped", "label 'web' does not match"),
    }
    assert a.scheduled(name) == [f"{name}/ports"]
    assert b.scheduled(name) == c.scheduled(name) == []
    # Membership is evaluated again on the label's interval: c starts matching, a stops.
    (c.dir / "web").touch()
    (a.dir / "web").unlink()
    assert retry(lambda: c.scheduled(name) == [f"{name}/ports"], timeout=5), c.stderr()
    assert retry(lambda: a.scheduled(name) == [], timeout=5), a.stderr()
    assert a.fragment(name)["state"] == "skipped"
    (c.dir / "web").unlink()
    assert retry(lambda: c.scheduled(name) == [], timeout=5)


def test_a_host_push_reaches_only_that_host(daemons, mosquitto, root):  # noqa: F811
    name = unique("only")
    result, rows = push_wait(mosquitto, root, name, query_toml(q=STABLE), "--host", "b")
    assert result.returncode == 0, result.stderr
    assert [(r["host"], r["state"]) for r in rows] == [("b", "applied")]
    a, b, c = daemons
    assert b.scheduled(name) == [f"{name}/q"]
    for other in (a, c):
        assert retry(lambda other=other: (other.fragment(name) or {}).get("state") == "skipped")
        assert other.scheduled(name) == []
        assert other.fragment(name)["reason"] == "for b, not this host"


def test_fragment_query_results_reach_the_mqtt_sink_on_a_two_level_topic(daemons, mosquitto, root):  # noqa: F811
    name = unique("mq")
    text = f'[queries.snap]\nsql = "{STABLE}"\ninterval = "200ms"\nsnapshot = true\n'
    result, _ = push_wait(mosquitto, root, name, text, "--host", "a")
    assert result.returncode == 0, result.stderr
    lines = mosquitto.subscribe(f"streamq/a/{name}/#", 1, timeout=5)
    assert lines, "no result line on streamq/a/<fragment>/<query>"
    line = json.loads(lines[0])
    assert line["name"] == f"{name}/snap" and line["hostIdentifier"] == "a"


def test_fragment_decorators_decorate_the_hosts_result_lines_until_withdrawn(daemons, mosquitto, root):  # noqa: F811
    name = unique("deco")
    text = query_toml(q=STABLE) + "[decorators]\nload = [\"SELECT 'fleet' AS managed_by\"]\n"
    result, _ = push_wait(mosquitto, root, name, text, "--host", "b")
    assert result.returncode == 0, result.stderr
    b = daemons[1]
    assert retry(lambda: len(b.lines(f"{name}/q")) == 2, timeout=5)
    assert {x["decorations"].get("managed_by") for x in b.lines(f"{name}/q")} == {"fleet"}
    gone = push(mosquitto, name, "--delete", "--wait")
    assert gone.returncode == 0, gone.stderr
    again = unique("plain")
    result, _ = push_wait(mosquitto, root, again, query_toml(q=STABLE), "--host", "b")
    assert retry(lambda: len(b.lines(f"{again}/q")) == 2, timeout=5)
    assert all("managed_by" not in x["decorations"] for x in b.lines(f"{again}/q"))


def test_the_docs_worked_example_runs(daemons, mosquitto, root):  # noqa: F811
    """docs/fleet.md's fragment (alert on new listening ports) pushed --label web: a has its web marker."""
    doc = (ROOT / "docs" / "fleet.md").read_text()
    (fragment,) = [block for block in doc.split("```toml\n")[1:] if block.startswith("# web-ports.toml")]
    fragment = fragment.split("```")[0]
    a = daemons[0]
    (a.dir / "web").touch()
    try:
        assert retry(lambda: a.query("SELECT member FROM streamq_fleet_labels WHERE name = 'web'") == [{"member": 1}])
        result, rows = push_wait(mosquitto, root, "web-ports", fragment, "--label", "web")
        assert result.returncode == 0, result.stderr
        assert {r["host"]: r["state"] for r in rows} == {"a": "applied", "b": "skipped", "c": "skipped"}
        # The host's own [labels.web] (a marker file here) wins over the fragment's (nginx running).
        assert a.query("SELECT defined_by FROM streamq_fleet_labels WHERE name = 'web'") == [{"defined_by": "config"}]
        expected = a.query("SELECT count(*) AS n FROM listening_ports WHERE port != 0")[0]["n"]
        assert retry(lambda: len(a.lines("web-ports/new_listening_ports")) >= min(expected, 1), timeout=10)
        assert all(x["action"] == "added" for x in a.lines("web-ports/new_listening_ports"))
    finally:
        (a.dir / "web").unlink()
        push(mosquitto, "web-ports", "--delete", "--wait")


# -- versions ---------------------------------------------------------------------------------------


def test_a_new_version_replaces_the_old_and_unchanged_queries_keep_their_diff_state(daemons, mosquitto, root):  # noqa: F811
    name = unique("ver")
    result, _ = push_wait(mosquitto, root, name, query_toml(keep=STABLE, change="SELECT 1 AS n"))
    assert result.returncode == 0, result.stderr
    for d in daemons:
        assert retry(lambda d=d: len(d.lines(f"{name}/keep")) == 2 and d.lines(f"{name}/change"), timeout=5)
    result, rows = push_wait(mosquitto, root, name, query_toml(keep=STABLE, change="SELECT 2 AS n"))
    assert result.returncode == 0, result.stderr
    assert {(r["state"], r["version"]) for r in rows} == {("applied", 2)}
    for d in daemons:
        assert retry(lambda d=d: any(x["columns"]["n"] in (2, "2") for x in d.lines(f"{name}/change")), timeout=5)
        runs = d.query(f"SELECT executions FROM streamq_schedule WHERE name = '{name}/keep'")[0]["executions"]
        assert retry(
            lambda d=d, runs=runs: (
                d.query(f"SELECT executions FROM streamq_schedule WHERE name = '{name}/keep'")[0]["executions"]
                >= runs + 3
            ),
            timeout=5,
        )
        # 'keep' ran on after the new version without a second "added" burst.
        assert [(x["action"], x["columns"]["v"]) for x in d.lines(f"{name}/keep")] == [("added", "a"), ("added", "b")]
        assert d.fragment(name)["applied_version"] == 2


def test_a_sighup_keeps_the_fragments_in_force_and_their_state(daemons, mosquitto, root):  # noqa: F811
    name = unique("hup")
    result, _ = push_wait(mosquitto, root, name, query_toml(q=STABLE), "--host", "c")
    assert result.returncode == 0, result.stderr
    c = daemons[2]
    assert retry(lambda: len(c.lines(f"{name}/q")) == 2, timeout=5)
    reloads = c.stderr().count("config reloaded")
    c.proc.send_signal(signal.SIGHUP)
    assert retry(lambda: c.stderr().count("config reloaded") > reloads, timeout=10), c.stderr()
    assert c.scheduled(name) == [f"{name}/q"]
    runs = c.query(f"SELECT executions FROM streamq_schedule WHERE name = '{name}/q'")[0]["executions"]
    assert retry(
        lambda: c.query(f"SELECT executions FROM streamq_schedule WHERE name = '{name}/q'")[0]["executions"] >= runs + 3
    )
    assert len(c.lines(f"{name}/q")) == 2  # no second "added" burst after the reload
    assert c.fragment(name)["state"] == "applied"


def test_delete_removes_the_fragments_queries_everywhere(daemons, mosquitto, root):  # noqa: F811
    name = unique("del")
    result, _ = push_wait(mosquitto, root, name, query_toml(q=STABLE))
    assert result.returncode == 0, result.stderr
    assert all(d.scheduled(name) == [f"{name}/q"] for d in daemons)
    gone = push(mosquitto, name, "--delete", "--wait", "--json")
    assert gone.returncode == 0, gone.stderr
    assert [(r["host"], r["state"], r["version"]) for r in json.loads(gone.stdout)] == [
        (h, "withdrawn", 2) for h in "abc"
    ]
    for d in daemons:
        assert d.scheduled(name) == []
        assert d.fragment(name)["applied_version"] is None
    unknown = push(mosquitto, unique("never"), "--delete")
    assert unknown.returncode == 1 and "neither the broker nor any host knows it" in unknown.stderr


# -- refusals ---------------------------------------------------------------------------------------


def publish_raw(broker, topic: str, body: dict | bytes) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def send() -> None:
        import aiomqtt

        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish(topic, payload, qos=1, retain=True)

    asyncio.run(send())


def signed(name: str, version: int, toml: str, key: str = KEY, **kw) -> dict:
    return fleet_protocol.make_fragment(name, version, key=key.encode(), toml=toml, **kw)


def refusals(d: ConfigDaemon, name: str) -> int:
    return (d.fragment(name) or {}).get("refused") or 0


def expect_refused(daemons, name: str, before: dict[str, int], words: str) -> None:
    for d in daemons:
        assert retry(lambda d=d: refusals(d, name) > before[d.host], timeout=5), d.stderr()
        assert words in d.fragment(name)["last_error"]


def test_forged_tampered_replayed_and_mistargeted_fragments_are_refused_and_counted(daemons, mosquitto, root):  # noqa: F811
    name = unique("sec")
    topic = fleet_protocol.CONFIG_PREFIX + name
    v1, v2 = signed(name, 1, query_toml(q=STABLE)), signed(name, 2, query_toml(q=STABLE, r="SELECT 3 AS n"))
    publish_raw(mosquitto, topic, v1)
    publish_raw(mosquitto, topic, v2)
    for d in daemons:
        assert retry(lambda d=d: (d.fragment(name) or {}).get("applied_version") == 2, timeout=5), d.stderr()
    cases = [
        ("forged", signed(name, 3, query_toml(evil=STABLE), key="not the fleet key"), "bad signature"),
        ("tampered", {**signed(name, 3, query_toml(q=STABLE)), "toml": query_toml(evil=STABLE)}, "bad signature"),
        ("retargeted", {**signed(name, 3, query_toml(q=STABLE), hosts=["a"]), "hosts": ["b"]}, "bad signature"),
        ("replayed", v1, "version 1 is older than version 2"),
        ("same version", signed(name, 2, query_toml(evil=STABLE)), "version 2 was seen already with other content"),
        ("unsigned", {k: v for k, v in signed(name, 3, query_toml(q=STABLE)).items() if k != "sig"}, "missing 'sig'"),
        ("other name", signed(unique("x"), 3, query_toml(q=STABLE)), "arrived on"),
        ("not json", b"\xff{", "malformed JSON"),
        ("cleared", b"", "not a signed withdrawal"),
    ]
    for _what, body, words in cases:
        before = {d.host: refusals(d, name) for d in daemons}
        publish_raw(mosquitto, topic, body)
        expect_refused(daemons, name, before, words)
    for d in daemons:  # version 2 stays in force everywhere
        row = d.fragment(name)
        assert (row["version"], row["applied_version"], row["state"]) == (2, 2, "applied"), row
        assert d.scheduled(name) == [f"{name}/q", f"{name}/r"]
        assert row["refused"] >= len(cases)
    # A fragment for another host is not applied: every host sees every fragment, only b runs it.
    publish_raw(mosquitto, topic, signed(name, 3, query_toml(q=STABLE), hosts=["b"]))
    a, b, c = daemons
    assert retry(lambda: a.fragment(name)["state"] == "skipped" and c.fragment(name)["state"] == "skipped")
    assert a.scheduled(name) == c.scheduled(name) == []
    assert retry(lambda: b.scheduled(name) == [f"{name}/q"])
    reports = {r["host"]: r for r in json.loads(status(mosquitto).stdout) if r["fragment"] == name}
    assert {h: r["state"] for h, r in reports.items()} == {"a": "skipped", "b": "applied", "c": "skipped"}
    # A forged version on the broker: `fleet status` shows every host refused it (it holds no good
    # version to report, so it must not read as still pending), and b keeps running version 3.
    publish_raw(mosquitto, topic, signed(name, 4, query_toml(evil=STABLE), key="not the fleet key"))

    def shown() -> dict[str, tuple]:
        rows = [r for r in json.loads(status(mosquitto).stdout) if r["fragment"] == name]
        return {r["host"]: (r["state"], r["applied"], r["reason"]) for r in rows}

    refused = "version 4: bad signature"
    expected = {"a": ("refused", None, refused), "b": ("refused", 3, refused), "c": ("refused", None, refused)}
    assert retry(lambda: shown() == expected, timeout=10), shown()


# The CLI applies the config loader's rules before it sends anything; what only a host can
# check (its sinks, SQL prepared on its tables) is refused there.
@pytest.mark.parametrize(
    ("text", "words", "cli_refuses"),
    [
        ('[sinks.leak]\ntype = "file"\npath = "/tmp/leak.jsonl"\n', "sinks: not allowed here", True),
        ('[sources.jsonl.x]\npath = "/etc/shadow"\n', "sources: not allowed here", True),
        ('[fleet]\nurl = "mqtt://elsewhere:1883"\n', "fleet: not allowed here", True),
        ('[state]\npath = "/tmp/x.db"\n', "state: not allowed here", True),
        ('[packs]\npaths = ["/etc/streamq/packs/*.conf"]\n', "packs.paths: a fragment writes its packs inline", True),
        ("[queries.x]\nsql = \"ATTACH DATABASE '/tmp/sqfc.db' AS x\"\n", "read-only connection: ATTACH", False),
        ("[queries.x]\nsql = \"SELECT load_extension('/tmp/evil.so')\"\n", "load_extension", False),
        ('[queries.x]\nsql = "SELECT 1; SELECT 2"\n', "one statement per query", False),
        ('[queries.x]\nsql = "SELECT 1"\nsinks = ["nope"]\n', "unknown sink 'nope' (sinks: out, mq)", False),
        ('[labels.l]\nsql = "DELETE FROM x"\n', "labels.l.sql: not allowed on the read-only connection: DELETE", False),
        ('[decorators]\nalways = ["PRAGMA user_version = 1"]\n', "read-only connection: PRAGMA user_version", False),
    ],
)
def test_a_fragment_that_could_redirect_data_or_write_is_refused_whole(
    daemons,
    mosquitto,  # noqa: F811
    root,
    text,
    words,
    cli_refuses,
):
    name = unique("bad")
    whole = query_toml(fine=STABLE) + text
    cli = push(mosquitto, name, fragment_file(root, whole))
    if cli_refuses:
        assert cli.returncode == 2 and words in cli.stderr, cli.stderr
        # Published anyway (signed, by hand): the hosts apply the same rules.
        publish_raw(mosquitto, fleet_protocol.CONFIG_PREFIX + name, signed(name, 1, whole))
    else:
        assert cli.returncode == 0, cli.stderr
    for d in daemons:
        assert retry(lambda d=d: (d.fragment(name) or {}).get("state") == "refused", timeout=5), d.stderr()
        row = d.fragment(name)
        assert words in row["reason"] and row["refused"] == 1 and row["applied_version"] is None, row
        assert d.scheduled(name) == []  # refused whole: not even the good query runs
    rows = [r for r in json.loads(status(mosquitto).stdout) if r["fragment"] == name]
    assert {(r["host"], r["state"]) for r in rows} == {(h, "refused") for h in "abc"}
    assert all(words in r["reason"] for r in rows)


def test_a_refused_version_leaves_the_one_before_in_force(daemons, mosquitto, root):  # noqa: F811
    name = unique("keep")
    result, _ = push_wait(mosquitto, root, name, query_toml(q=STABLE))
    assert result.returncode == 0, result.stderr
    bad, rows = push_wait(mosquitto, root, name, query_toml(q="SELECT * FROM no_such_table"))
    assert bad.returncode == 1
    assert {(r["host"], r["state"], r["version"], r["applied"]) for r in rows} == {(h, "refused", 2, 1) for h in "abc"}
    assert "a: refused version 2: fragment " in bad.stderr and "no such table: no_such_table" in bad.stderr
    for d in daemons:
        assert d.scheduled(name) == [f"{name}/q"]


# -- restarts, status, --wait ----------------------------------------------------------------------


def test_a_daemon_restarted_with_the_broker_down_runs_its_last_applied_fragments(root):
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    broker = start_broker()
    d = ConfigDaemon(root, "r1", broker.url)
    try:
        d.wait_answering()
        (d.dir / "web").touch()
        # As the other label tests do: push once the host's label matches, or it is skipped.
        assert retry(lambda: d.query("SELECT member FROM streamq_fleet_labels WHERE name = 'web'") == [{"member": 1}])
        name = unique("kept")
        result, _ = push_wait(broker, root, name, query_toml(q=STABLE), "--label", "web")
        assert result.returncode == 0, result.stderr
        # --wait may return before the label's first evaluation saw the file: the fragment then waits for it
        assert retry(lambda: d.scheduled(name) == [f"{name}/q"], timeout=5)
        d.stop()
        port = broker.port
        broker.stop()
        d.start()
        assert retry(lambda: "running 1 query as" in d.stderr() or d.proc.poll() is not None, timeout=20), d.stderr()
        assert retry(lambda: (d.dir / "run/control.sock").exists() and d.scheduled(name) == [f"{name}/q"])
        row = d.fragment(name)
        assert (row["state"], row["applied_version"]) == ("applied", 1)
        assert f"fleet config: running {name} v1" in d.stderr()  # what the log says it runs, it runs
        assert retry(lambda: "MQTT broker" in d.stderr(), timeout=15)  # it tries to reach the broker meanwhile
        # The broker comes back empty (no persistence): the host keeps what it runs, and a
        # new push gets a version above the one the host reports.
        broker = start_broker(port)
        assert retry(lambda: "fleet: answering" in d.stderr(), timeout=40)
        again, rows = push_wait(broker, root, name, query_toml(q=STABLE))
        assert again.returncode == 0, again.stderr
        assert [(r["host"], r["version"], r["state"]) for r in rows] == [("r1", 2, "applied")]
        # The kept file is checked again when read: edited by hand, it runs nothing.
        d.stop()
        broker.stop()
        kept = d.dir / "state.fleet.json"
        data = json.loads(kept.read_text())
        data["fragments"][name]["envelope"]["toml"] = query_toml(q=STABLE, extra="SELECT 9 AS n")
        kept.write_text(json.dumps(data))
        d.start()
        assert retry(lambda: "running 0 queries as" in d.stderr() or d.proc.poll() is not None, timeout=20)
        assert f"stored fragment {name!r} refused: bad signature" in d.stderr()
    finally:
        d.stop()
        broker.stop()


def test_status_lists_each_hosts_fragments_and_wait_names_the_hosts_that_did_not_report(daemons, mosquitto, root):  # noqa: F811
    name = unique("st")
    result, _ = push_wait(mosquitto, root, name, query_toml(q=STABLE), "--host", "a", "--host", "c")
    assert result.returncode == 0, result.stderr
    rows = [r for r in json.loads(status(mosquitto).stdout) if r["fragment"] == name]
    assert [(r["host"], r["status"], r["version"], r["state"], r["applied"]) for r in rows] == [
        ("a", "online", 1, "applied", 1),
        ("b", "online", 1, "skipped", None),
        ("c", "online", 1, "applied", 1),
    ]
    now = time.time()
    for r in rows:
        seen = time.mktime(time.strptime(r["last_seen"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert abs(now - seen) < 120
    pretty = run_cli("fleet", "status", "--broker", mosquitto.url)
    assert pretty.returncode == 0 and f"| {name}" in pretty.stdout
    # A named host that is not there: --wait says so, and exits 1.
    again = fragment_file(root, query_toml(q=STABLE))
    missing = push(mosquitto, name, again, "--wait", "--host", "a", "--host", "ghost", timeout=1)
    assert missing.returncode == 1
    assert "ghost: no report within 1s (status: unknown)" in missing.stderr
    assert [
        r["host"]
        for r in json.loads(run_cli("fleet", "status", "--broker", mosquitto.url, "--json").stdout)
        if r["fragment"] == name and r["state"] == "applied"
    ] == ["a"]  # version 2 went to a (and ghost): c dropped it


def test_usage_errors_exit_2_with_one_line(mosquitto, root):  # noqa: F811
    cases = [
        (["fleet", "push", "--broker", mosquitto.url, "--key", KEY, "x"], "give the fragment"),
        (["fleet", "push", "--broker", mosquitto.url, "--key", KEY, "--delete", "x", "f.toml"], "--delete NAME"),
        (["fleet", "push", "--broker", mosquitto.url, "--key", KEY, "bad/name", __file__], "fragment name"),
        (["fleet", "push", "--broker", mosquitto.url, "--key", KEY, "x", "/nonexistent.toml"], "cannot read"),
        (["fleet", "push", "--broker", mosquitto.url, "x", fragment_file(root, "")], "fragments are signed"),
        (["fleet", "push", "--key", KEY, "x", fragment_file(root, "")], "name the broker"),
        (["fleet", "push", "--broker", mosquitto.url, "--key", KEY, "x", fragment_file(root, "[q")], "fragment x:"),
    ]
    for args, words in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and result.stderr.count("\n") == 1, result.stderr
