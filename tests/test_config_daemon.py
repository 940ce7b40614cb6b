"""The daemon's config sections: every mistake is one line naming the key path and its line,
`streamq run` exits 2 and creates nothing; osquery packs load as pack_<pack>_<query>."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from streamq.config.loader import parse
from streamq.daemon.app import query_specs
from streamq.daemon.configuration import default_config_text
from streamq.errors import ConfigError

GOOD = """\
[state]
path = "state.db"
[sinks.out]
type = "file"
path = "out.jsonl"
[queries.q]
sql = "SELECT 1 AS one"
interval = "5s"
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(textwrap.dedent(text), "c.toml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "bogus = 1\n", "c.toml:9: queries.q.bogus: unknown key"),
        (GOOD.replace('"5s"', "true"), "c.toml:8: queries.q.interval: expected a duration"),
        (GOOD.replace('"5s"', '"5 parsecs"'), "c.toml:8: queries.q.interval: '5 parsecs' is not a duration"),
        (GOOD.replace('"5s"', "0"), "c.toml:8: queries.q.interval: expected a duration above zero"),
        (GOOD + 'sinks = ["nope"]\n', "c.toml:9: queries.q.sinks: unknown sink 'nope' (sinks: out)"),
        (GOOD + 'on = ["nope_events"]\n', "c.toml:9: queries.q.on: no source fills 'nope_events'"),
        (GOOD + 'mode = "rolling"\n', "c.toml:9: queries.q.mode: expected one of 'diff', 'snapshot', 'stream'"),
        (GOOD.replace('type = "file"', 'type = "kafka"'), "c.toml:4: sinks.out.type: expected one of"),
        (GOOD.replace('path = "out.jsonl"', "path = 5"), "c.toml:5: sinks.out.path: expected a string, got int"),
        (GOOD + '[sinks.out2]\ntype = "file"\nfsync = "sometimes"\n', "c.toml:11: sinks.out2.fsync: expected one of"),
        (GOOD + "[schedule]\nsplay_percent = 140\n", "c.toml:10: schedule.splay_percent: expected a percentage"),
        (GOOD + "[schedule]\ndenylist_after = 0\n", "c.toml:10: schedule.denylist_after: expected a positive"),
        (GOOD + '[sinks.m]\ntype = "mqtt"\n', "c.toml:9: sinks.m: missing required key 'url'"),
        (GOOD + "[queries.z]\ninterval = 5\n", "c.toml:9: queries.z: missing required key 'sql'"),
        (GOOD + '[queries."bad name"]\nsql = "SELECT 1"\n', "c.toml:9: queries.bad name: query names use letters"),
        (GOOD + "[decorators]\nalways = [1]\n", "c.toml:10: decorators.always: expected a list of strings"),
        (GOOD + "[hosts]\n", "c.toml:9: hosts: unknown section"),
        (GOOD + "[queries.q2\n", "c.toml: Expected ']' at the end of a table declaration (at line 9, column 12)"),
    ],
)
def test_mistakes_name_key_path_and_line(text, expected):
    assert error_of(text).startswith(expected), error_of(text)


def test_query_defaults_and_osquery_spellings():
    config = parse(GOOD + '[queries.s]\nquery = "SELECT 2"\nsnapshot = true\ninterval = 60\n', "c.toml")
    specs = query_specs(config)
    assert specs["q"].mode == "diff" and specs["q"].sinks == ("out",) and specs["q"].interval == 5.0
    assert specs["q"].deadline == 60.0 and specs["q"].numerics is True and specs["q"].format == "event"
    assert specs["s"].sql == "SELECT 2" and specs["s"].mode == "snapshot"


def test_embedded_default_config_is_valid_and_runs_the_seed_query():
    config = parse(default_config_text(), "<embedded>")
    specs = query_specs(config)
    seed = specs["new_listening_ports"]
    assert seed.mode == "diff" and seed.on == ("socket_events",) and seed.interval == 30.0
    assert set(seed.sinks) == set(config.sinks) == {"log", "console"}


def write_pack(path, queries: dict, **extra) -> None:
    path.write_text(json.dumps({"queries": queries, **extra}))


def test_pack_queries_are_named_like_osquery_and_filtered_by_platform(tmp_path):
    write_pack(
        tmp_path / "ops.conf",
        {
            "listeners": {"query": "SELECT 1 AS a", "interval": "120", "platform": "linux", "snapshot": True},
            "mac_only": {"query": "SELECT 2", "interval": 60, "platform": "darwin"},
            "anywhere": {"query": "SELECT 3", "interval": 30, "removed": False, "description": "All."},
        },
    )
    write_pack(tmp_path / "win.conf", {"w": {"query": "SELECT 4", "interval": 5}}, platform="windows")
    config = parse(f'[packs]\npaths = ["{tmp_path}/*.conf"]\n', "c.toml")
    specs = query_specs(config)
    assert sorted(specs) == ["pack_ops_anywhere", "pack_ops_listeners"]
    assert specs["pack_ops_listeners"].mode == "snapshot" and specs["pack_ops_listeners"].interval == 120.0
    assert specs["pack_ops_anywhere"].removed is False and specs["pack_ops_anywhere"].mode == "diff"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"queries": {"a": {"query": "SELECT 1", "interval": "x5"}}}', "queries.a.interval: 'x5' is not a duration"),
        ('{"queries": {"a": {"query": "SELECT 1",', "Expecting"),
        ('{"queries": ["SELECT 1"]}', "expected an object with a 'queries' object"),
        ('{"queries": {"a": {"interval": 5}}}', "queries.a: missing required key 'sql'"),
    ],
)
def test_bad_pack_names_the_packs_key_and_the_pack(tmp_path, content, expected):
    (tmp_path / "p.json").write_text(content)
    message = error_of(f'[state]\npath = "s.db"\n[packs]\npaths = ["{tmp_path}/p.json"]\n')
    assert message.startswith(f"c.toml:4: packs.paths: pack {tmp_path}/p.json: "), message
    assert expected in message


def test_missing_pack_file_is_an_error_but_an_empty_glob_is_not(tmp_path):
    message = error_of(f'[packs]\npaths = ["{tmp_path}/none.conf"]\n')
    assert message.startswith("c.toml:2: packs.paths: no such pack file")
    assert parse(f'[packs]\npaths = ["{tmp_path}/*.conf"]\n').queries == {}


# -- `streamq run` with a bad config: exit 2, one line, nothing created --------------------------

BAD_RUNS = {
    "unknown_key": (GOOD + "bogus = 1\n", "queries.q.bogus"),
    "wrong_type": (GOOD.replace('"5s"', '"soon"'), "queries.q.interval"),
    "unknown_sink": (GOOD + 'sinks = ["nope"]\n', "queries.q.sinks"),
    "malformed_toml": (GOOD + "[queries.q2\n", "at line 9"),
    "bad_pack": (GOOD + '[packs]\npaths = ["pack.json"]\n', "packs.paths: pack pack.json"),
    "unopenable_sink": (GOOD.replace('path = "out.jsonl"', 'path = "/proc/1/none/out.jsonl"'), "sinks.out.path"),
    "unopenable_state": (GOOD.replace('path = "state.db"', 'path = "/proc/1/none/state.db"'), "state.path"),
}


def test_bad_configs_exit_2_with_one_line_and_create_nothing(tmp_path):
    procs = {}
    for name, (text, _) in BAD_RUNS.items():
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "c.toml").write_text(text)
        (cwd / "pack.json").write_text('{"queries": {"a": {"query": "SELECT 1", "interval": -5}}}')
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "streamq", "run", "-c", "c.toml"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
        key = BAD_RUNS[name][1]
        assert proc.returncode == 2, (name, err)
        assert out == "", name
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("streamq: error: c.toml:") and key in lines[0], (name, err)
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["c.toml", "pack.json"], name


def test_check_flag_validates_without_running(tmp_path):
    (tmp_path / "c.toml").write_text(GOOD)
    result = subprocess.run(
        [sys.executable, "-m", "streamq", "run", "--check", "-c", "c.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0 and "ok" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]
