"""TOML configuration: every documented key, and errors that name the key path and the line."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from conftest import run_cli
from streamq.config.loader import load, parse
from streamq.config.options import fields_of, parse_duration
from streamq.config.sections import RingOptions
from streamq.errors import ConfigError
from streamq.sources import SOURCES

FULL = """\
# every key streamq reads
[rings]
capacity = 5000
max_age = "2h"

[docker]
socket = "/run/user/1000/docker.sock"
timeout = "2s"

[sources.process]
enabled = true
mode = "netlink"
poll_interval = "250ms"
priority = "realtime"

[sources.file]
enabled = true
paths = ["/etc", "/tmp/x"]
exclude = "/etc/mtab"
hash = ["sha256", "md5"]
hash_max_bytes = 1000

[sources.yara]
paths = { uploads = ["/srv/upload/%%"] }
file_paths = { uploads = ["base"] }
signatures = { base = ["/etc/streamq/rules.yar"] }
exclude = ["/srv/upload/tmp"]
max_pending = 500

[sources.socket]
enabled = false
interval = 2

[sources.network]
enabled = true

[sources.hardware]
enabled = false

[sources.audit]
enabled = true
mode = "multicast"
event_timeout = "250ms"

[sources.syslog]
enabled = true
socket = "/run/streamq/syslog.sock"
udp = "[::1]:514"

[sources.jsonl.app]
path = "/var/log/app.jsonl"
columns = { level = "text", code = "INTEGER", took = "REAL" }
table = "app_logs"
checkpoint = "/var/lib/streamq/app.pos"
max_line_bytes = 4096
from_start = true

[sources.mqtt.sensors]
url = "mqtt://localhost:1883"
topic = "sensors/#"
columns = { temp = "DOUBLE" }
qos = 2
max_line_bytes = 100
"""


def test_every_documented_key():
    config = parse(FULL, "full.toml")
    assert asdict(config.rings) == {"capacity": 5000, "max_age": 7200.0}
    sources = {key: asdict(options) for key, options in config.sources.items()}
    assert sources["process"] == {
        "enabled": True,
        "mode": "netlink",
        "poll_interval": 0.25,
        "priority": "realtime",
    }
    assert sources["file"] == {
        "enabled": True,
        "paths": ["/etc", "/tmp/x"],
        "exclude": ["/etc/mtab"],
        "hash": ["sha256", "md5"],
        "hash_max_bytes": 1000,
    }
    assert sources["socket"] == {"enabled": False, "interval": 2.0, "connections_interval": 1.0}
    assert sources["network"] == {"enabled": True}
    assert sources["hardware"] == {"enabled": False}
    assert sources["syslog"] == {"enabled": True, "socket": "/run/streamq/syslog.sock", "udp": "[::1]:514"}
    jsonl = sources["jsonl.app"]
    assert set(jsonl) == set(fields_of(SOURCES["jsonl"].load().Options))  # defaults filled for keys not set
    assert {k: jsonl[k] for k in config.raw["sources"]["jsonl"]["app"]} == {
        "path": "/var/log/app.jsonl",
        "columns": {"level": "TEXT", "code": "INTEGER", "took": "REAL"},
        "table": "app_logs",
        "checkpoint": "/var/lib/streamq/app.pos",
        "max_line_bytes": 4096,
        "from_start": True,
    }
    mqtt = sources["mqtt.sensors"]
    assert mqtt["table"] == "sensors_events" and mqtt["qos"] == 2 and mqtt["columns"] == {"temp": "DOUBLE"}
    # Every source the registry knows is exercised by FULL (so this test grows with the registry).
    for name, entry in SOURCES.items():
        if entry.tables is not None:
            assert set(sources[name]) == set(fields_of(entry.load().Options))
    assert set(mqtt) == set(fields_of(SOURCES["mqtt"].load().Options))
    assert set(asdict(config.rings)) == set(fields_of(RingOptions))
    assert (config.docker.socket, config.docker.timeout) == ("/run/user/1000/docker.sock", 2.0)


def test_defaults():
    config = parse("", "empty.toml")
    assert asdict(config.rings) == {"capacity": 100_000, "max_age": 3600.0}
    assert config.sources == {}
    partial = parse("[sources.process]\nmode = 'poll'\n")
    assert asdict(partial.sources["process"]) == {
        "enabled": True,
        "mode": "poll",
        "poll_interval": 0.1,
        "priority": "realtime",
    }
    assert load(None).sources == {}


@pytest.mark.parametrize(
    ("text", "line", "where", "words"),
    [
        ("[rings]\ncapacity = 'big'\n", 2, "rings.capacity", "expected an integer, got str"),
        ("[rings]\ncapacity = 0\n", 2, "rings.capacity", "positive"),
        ("[rings]\ncapacity = true\n", 2, "rings.capacity", "boolean"),
        ("[rings]\nmax_age = '5 parsecs'\n", 2, "rings.max_age", "not a duration"),
        ("[rings]\nmax_age = -1\n", 2, "rings.max_age", "negative"),
        ("\n\n[sources.process]\nenabled = 'yes'\n", 4, "sources.process.enabled", "true or false"),
        ("[sources.process]\nmode = 'ebpf'\n", 2, "sources.process.mode", "expected one of"),
        ("[sources.process]\nmode = 'auto'\npoll_interval = [1]\n", 3, "sources.process.poll_interval", "duration"),
        ("[sources.process]\npriority = 'max'\n", 2, "sources.process.priority", "expected one of"),
        ("[sources.file]\npaths = [1, 2]\n", 2, "sources.file.paths", "list of strings"),
        ("[sources.file]\nhash = ['crc32']\n", 2, "sources.file.hash", "'crc32'"),
        ("[sources.file]\nhash_max_bytes = 1.5\n", 2, "sources.file.hash_max_bytes", "integer"),
        ("[sources.socket]\ninterval = 'soon'\n", 2, "sources.socket.interval", "duration"),
        ("[sources.syslog]\nudp = '514'\n", 2, "sources.syslog.udp", "HOST:PORT"),
        ("[sources.syslog]\nsocket = 5\n", 2, "sources.syslog.socket", "string"),
        ("[sources.jsonl.app]\npath = 5\n", 2, "sources.jsonl.app.path", "string"),
        ("[sources.jsonl.app]\ncolumns = { a = 'BLOB' }\n", 2, "sources.jsonl.app.columns", "type must be"),
        ("[sources.jsonl.app]\ncolumns = { 'a b' = 'TEXT' }\n", 2, "sources.jsonl.app.columns", "identifier"),
        ("[sources.jsonl.app]\npath = '/x'\ntable = 'Bad-Name'\n", 3, "sources.jsonl.app.table", "snake_case"),
        ("[sources.jsonl.app]\nfrom_start = 1\n", 2, "sources.jsonl.app.from_start", "true or false"),
        ("[sources.jsonl.app]\nfrom_start = true\n", 1, "sources.jsonl.app", "missing required key 'path'"),
        ("[sources.mqtt.m]\nurl = 'mqtt://h'\ntopic = 't'\nqos = 3\n", 4, "sources.mqtt.m.qos", "expected one of"),
        ("[sources.mqtt.m]\nurl = 'mqtt://h'\ntopic = 't'\nqos = true\n", 4, "sources.mqtt.m.qos", "expected one of"),
        ("[sources.mqtt.m]\nurl = 'mqtt://h'\n", 1, "sources.mqtt.m", "missing required key 'topic'"),
        ("[sources.mqtt]\nurl = 'x'\n", 2, "sources.mqtt.url", "expected a table"),
        ("[sources]\nprocess = 5\n", 2, "sources.process", "expected a table"),
        ("sources = 5\n", 1, "sources", "expected a table"),
        ("rings = 'x'\n", 1, "rings", "expected a table"),
    ],
)
def test_bad_values_name_key_and_line(text, line, where, words):
    with pytest.raises(ConfigError) as info:
        parse(text, "bad.toml")
    message = str(info.value)
    assert message.startswith(f"bad.toml:{line}: {where}: "), message
    assert words in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "line", "where", "words"),
    [
        ("[rings]\ncapacity = 5\nsize = 9\n", 3, "rings.size", "unknown key"),
        ("[sources.process]\nmdoe = 'poll'\n", 2, "sources.process.mdoe", "expected one of enabled, mode"),
        ("[sources.procss]\nmode = 'poll'\n", 1, "sources.procss", "unknown source"),
        ("[logging]\nlevel = 'debug'\n", 1, "logging", "unknown section"),
        ("[sources.jsonl.app]\npath = '/x'\ncolour = 'red'\n", 3, "sources.jsonl.app.colour", "unknown key"),
    ],
)
def test_unknown_keys_and_sections(text, line, where, words):
    with pytest.raises(ConfigError) as info:
        parse(text, "bad.toml")
    message = str(info.value)
    assert message.startswith(f"bad.toml:{line}: {where}: "), message
    assert words in message


@pytest.mark.parametrize(
    ("text", "line"),
    [("[rings]\ncapacity = \n", 2), ("[rings\n", 1), ("a = 1\na = 2\n", 2), ("\n\n[x]\ny = 'unterminated\n", 4)],
)
def test_toml_syntax_errors_name_the_line(text, line):
    with pytest.raises(ConfigError) as info:
        parse(text, "bad.toml")
    message = str(info.value)
    assert message.startswith("bad.toml: ") and f"line {line}" in message, message


def test_durations():
    assert parse_duration("250ms") == 0.25
    assert parse_duration("2m") == 120.0 and parse_duration("1d") == 86400.0 and parse_duration("30") == 30.0
    assert parse_duration(1.5) == 1.5
    for bad in ("fast", "-5s", True, "5 weeks"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_cli_reports_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rings]\ncapacity = 10\n\n[sources.process]\nmode = 'ebpf'\n")
    result = run_cli("query", "-c", str(bad), "select 1")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"streamq: error: {bad}:5: sources.process.mode: expected one of")

    syntax = tmp_path / "syntax.toml"
    syntax.write_text("[rings]\ncapacity = = 3\n")
    result = run_cli("query", "-c", str(syntax), "select 1")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "line 2" in result.stderr

    result = run_cli("query", "-c", str(tmp_path / "absent.toml"), "select 1")
    assert result.returncode == 2 and "cannot read config" in result.stderr and "Traceback" not in result.stderr

    good = tmp_path / "good.toml"
    good.write_text(FULL)
    result = run_cli("query", "--json", "-c", str(good), "select 1 AS one")
    assert result.returncode == 0 and '"one": 1' in result.stdout
