"""Fleet fragments through the config loader: the sections allowed, what is refused whole,
inline packs, labels, and the config a daemon runs (its file merged with fragments)."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest

from streamq.config.fragments import merge, name_problem, parse_fragment
from streamq.config.loader import parse
from streamq.config.options import fields_of
from streamq.config.sections import QueryOptions
from streamq.errors import ConfigError

LOCAL = """\
[state]
path = "state.db"
[sinks.out]
type = "file"
path = "out.jsonl"
[sinks.other]
type = "file"
path = "other.jsonl"
[queries.local]
sql = "SELECT 1 AS one"
[decorators]
load = ["SELECT 'h' AS hostname"]
[labels.web]
sql = "SELECT 1 FROM processes WHERE name = 'nginx'"
interval = "30s"
"""

FRAGMENT = """\
[queries.ports]
sql = "SELECT port FROM listening_ports"
interval = 60
sinks = ["other"]
[queries.mounts]
sql = "SELECT path FROM mounts"
[packs.web_extra]
platform = "linux"
[packs.web_extra.queries.users]
query = "SELECT username FROM users"
interval = "3600"
[packs.web_extra.queries.mac_only]
query = "SELECT 1"
platform = "darwin"
[decorators]
always = ["SELECT 'fleet' AS managed_by"]
[labels.db]
sql = "SELECT 1 FROM processes WHERE name = 'postgres'"
"""


def error_of(text: str, base=None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_fragment(textwrap.dedent(text), "f1", base=base)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_fragment_holds_queries_inline_packs_decorators_and_labels():
    local = parse(LOCAL, "local.toml")
    fragment = parse_fragment(FRAGMENT, "f1", base=local)
    assert sorted(fragment.queries) == ["mounts", "pack_web_extra_users", "ports"]
    assert fragment.queries["pack_web_extra_users"].interval == 3600
    assert fragment.queries["ports"].sinks == ["other"]
    assert fragment.queries["mounts"].sinks == ["out", "other"]  # no sinks named: every sink of the host
    assert fragment.decorators.always == ["SELECT 'fleet' AS managed_by"]
    assert fragment.labels["db"].interval == 60.0
    assert fragment.sinks == local.sinks and fragment.sources == local.sources


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[sinks.x]\ntype = "file"\npath = "/tmp/x"\n', "fragment f1:1: sinks: not allowed here: this holds only"),
        ('[sources.jsonl.x]\npath = "/var/log/x"\n', "fragment f1:1: sources: not allowed here"),
        ('[fleet]\nkey = "mine"\n', "fragment f1:1: fleet: not allowed here"),
        ('[control]\npath = "/tmp/c.sock"\n', "fragment f1:1: control: not allowed here"),
        ('[state]\npath = "/tmp/s.db"\n', "fragment f1:1: state: not allowed here"),
        ('[host]\nidentifier = "other"\n', "fragment f1:1: host: not allowed here"),
        ("[yara.signatures]\ng = ['/etc/x.yar']\n", "fragment f1:1: yara: not allowed here"),
        ('[packs]\npaths = ["/etc/osquery/packs/*.conf"]\n', "fragment f1: packs.paths: a fragment writes its packs"),
        ("[nonsense]\n", "fragment f1:1: nonsense: unknown section"),
        ('[queries.q]\nsql = "SELECT 1"\nbogus = 1\n', "fragment f1:3: queries.q.bogus: unknown key"),
        ("[queries.q]\ninterval = 5\n", "fragment f1:1: queries.q: missing required key 'sql'"),
        ('[labels.l]\nsql = "SELECT 1"\ninterval = "soon"\n', "fragment f1:3: labels.l.interval: 'soon' is not a dur"),
        ("[labels.l]\ninterval = 5\n", "fragment f1:1: labels.l: missing required key 'sql'"),
        ('[labels."bad name"]\nsql = "SELECT 1"\n', "labels.bad name: label names use letters"),
        ("[packs.p]\nqueries = 5\n", "packs.p: fragment f1: packs.p: expected an object with a 'queries' object"),
        ("[queries.q\n", "fragment f1: Expected ']'"),
    ],
)
def test_anything_else_refuses_the_whole_fragment_naming_the_line(text, expected):
    assert expected in error_of(text)


def test_against_the_host_sinks_and_sources_must_exist():
    local = parse(LOCAL, "local.toml")
    assert "queries.q.sinks: unknown sink 'nope' (sinks: out, other)" in error_of(
        '[queries.q]\nsql = "SELECT 1"\nsinks = ["nope"]\n', base=local
    )
    assert "queries.q.on: no source fills 'nope_events'" in error_of(
        '[queries.q]\nsql = "SELECT 1"\non = ["nope_events"]\n', base=local
    )
    # The pushing side knows no host's sinks: it checks the fragment alone.
    assert parse_fragment('[queries.q]\nsql = "SELECT 1"\nsinks = ["nope"]\n', "f1").queries["q"].sinks == ["nope"]


def test_fragment_names():
    assert name_problem("web-ports_2.v1") is None
    for bad in ("", "a/b", "a b", "+", "#", ".hidden", "-x", "x" * 65, "é"):
        assert name_problem(bad), bad
    with pytest.raises(ConfigError, match="fragment name 'a/b'"):
        parse_fragment("", "a/b")


def test_merge_names_fragment_queries_fragment_slash_query_and_adds_decorators():
    local = parse(LOCAL, "local.toml")
    fragment = parse_fragment(FRAGMENT, "f1", base=local)
    other = parse_fragment('[queries.local]\nsql = "SELECT 2"\n', "f0", base=local)
    merged = merge(local, {"f1": fragment, "f0": other})
    assert sorted(merged.queries) == ["f0/local", "f1/mounts", "f1/pack_web_extra_users", "f1/ports", "local"]
    assert merged.queries["local"].sql == "SELECT 1 AS one"  # a fragment cannot replace a config file's query
    assert merged.decorators.load == ["SELECT 'h' AS hostname"]
    assert merged.decorators.always == ["SELECT 'fleet' AS managed_by"]
    assert (merged.path, merged.text, merged.sinks) == (local.path, local.text, local.sinks)
    assert sorted(local.queries) == ["local"]  # the config file's own stays as it was
    assert merge(local, {}) is local


def test_a_config_file_may_inline_packs_and_define_labels_too():
    config = parse(LOCAL + FRAGMENT[FRAGMENT.index("[packs.") : FRAGMENT.index("[decorators]")], "c.toml")
    assert "pack_web_extra_users" in config.queries and "pack_web_extra_mac_only" not in config.queries
    assert config.queries["pack_web_extra_users"].sinks == ["out", "other"]
    assert config.labels["web"].interval == 30.0


def test_accept_config_needs_a_key():
    base = '[fleet]\nurl = "mqtt://localhost:1883"\naccept_config = true\n'
    with pytest.raises(ConfigError, match=r"fleet\.accept_config: needs key or key_file"):
        parse(base + "allow_unsigned = true\n", "c.toml")
    assert parse(base + 'key = "k"\n', "c.toml").fleet.accept_config is True


def _toml_value(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return json.dumps(value)
    return None


def test_a_fragment_query_takes_every_key_a_config_files_query_takes():
    """One loader: every QueryOptions key (set to its default) reads the same in a fragment as in a config file."""
    lines = ["[queries.q]", 'sql = "SELECT 1 AS one"', 'interval = "5s"']
    for name, f in fields_of(QueryOptions).items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        value = _toml_value(default)
        if name not in ("sql", "interval", "sinks") and value is not None:
            lines.append(f"{name} = {value}")
    text = "\n".join(lines) + "\n"
    local = parse(text, "c.toml")
    fragment = parse_fragment(text, "f1", base=local.replace(queries={}))
    assert fragment.queries["q"] == local.queries["q"]
    assert len(lines) >= 10  # the block really sets most keys
