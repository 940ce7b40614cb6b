"""The daemon's config sections: host, state, schedule, sinks, queries, packs, decorators.

Registered into streamq.config.loader's validator so one file configures sources and
daemon alike, and every mistake names its key path and line.
"""

from __future__ import annotations

import glob
import json
import re
import socket
from typing import Any

from .loader import (
    BOOL,
    EXTRA_SECTIONS,
    FINAL_CHECKS,
    STRING,
    Config,
    _Validator,
    duration,
    one_of,
    positive_int,
    string_list,
)

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a non-negative integer")
    return value


def positive_duration(value: Any) -> float:
    seconds = duration(value)
    if seconds <= 0:
        raise ValueError("expected a duration above zero, like '250ms' or '5s'")
    return seconds


def percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError("expected a percentage from 0 to 100")
    return float(value)


HOST = {"identifier": (STRING, None)}
STATE = {"path": (STRING, "streamq-state.db")}
SCHEDULE = {
    "epoch": (non_negative_int, 0),
    "splay_percent": (percent, 10.0),
    "deadline": (positive_duration, 60.0),
    "denylist_after": (positive_int, 3),
    "denylist_for": (duration, 3600.0),
    "memory_mb": (positive_int, 512),
}
SINK_COMMON = {"type": (one_of("file", "mqtt", "stdout"), None), "max_backlog_rows": (positive_int, 1_000_000)}
SINK_OPTIONS = {
    "file": {
        "path": (STRING, "streamq-results.jsonl"),
        "rotate_bytes": (non_negative_int, 10_000_000),
        "keep": (non_negative_int, 5),
        "fsync": (one_of("interval", "always", "never"), "interval"),
        "fsync_interval": (duration, 1.0),
    },
    "stdout": {"format": (one_of("human", "json"), "human")},
    "mqtt": {
        "url": (STRING, None),
        "topic": (STRING, "streamq/{host}/{query}"),
        "qos": (one_of(0, 1, 2), 1),  # type: ignore[arg-type]
        "client_id": (STRING, None),
        "username": (STRING, None),
        "password": (STRING, None),
        "ca": (STRING, None),
        "cert": (STRING, None),
        "key": (STRING, None),
        "keepalive": (duration, 30.0),
        "status_topic": (STRING, "streamq/{host}/status"),
        "batch_max": (positive_int, 500),
        "lines_per_message": (non_negative_int, 0),  # 0: one line a message, batched only under load
    },
}
QUERY = {
    "sql": (STRING, None),
    "query": (STRING, None),  # osquery's name for sql
    "interval": (positive_duration, None),
    "on": (string_list, []),
    "debounce": (duration, 0.02),
    "mode": (one_of("diff", "snapshot", "stream"), None),
    "snapshot": (BOOL, False),  # osquery's spelling of mode = "snapshot"
    "sinks": (string_list, None),
    "removed": (BOOL, True),
    "format": (one_of("event", "batch"), "event"),
    "numerics": (BOOL, True),
    "deadline": (positive_duration, None),
    "platform": (STRING, None),
    "version": (STRING, None),
    "description": (STRING, None),
    "value": (STRING, None),
    "shard": (positive_int, None),
    "denylist": (BOOL, True),
}
PACKS = {"paths": (string_list, [])}
# The control socket (streamq.daemon.control); path None: streamq.client.default_path().
CONTROL = {
    "enabled": (BOOL, True),
    "path": (STRING, None),
    "max_rows": (positive_int, 100_000),
    "deadline": (positive_duration, 10.0),
}
# Fleet queries over MQTT v5 (streamq.daemon.fleet, docs/fleet.md); a [fleet] section enables them.
FLEET = {
    "enabled": (BOOL, True),
    "url": (STRING, None),
    "key": (STRING, None),
    "key_file": (STRING, None),
    "allow_unsigned": (BOOL, False),
    "max_age": (positive_duration, 30.0),
    "client_id": (STRING, None),
    "status": (BOOL, True),
}
DECORATORS = {
    "load": (string_list, []),
    "always": (string_list, []),
    "interval": (lambda v: _interval_decorators(v), {}),
}


def _interval_decorators(value: Any) -> dict[float, list[str]]:
    if not isinstance(value, dict):
        raise ValueError('expected a table like { "3600" = ["SELECT ..."] }')
    out = {}
    for seconds, queries in value.items():
        out[duration(seconds)] = string_list(queries)
    return out


def _section(name, spec):
    def check(v, config: Config, data: Any) -> None:
        config.daemon[name] = v.section((name,), data, spec)

    return check


def _sinks(v, config: Config, data: Any) -> None:
    if not isinstance(data, dict):
        raise v.fail(("sinks",), "expected tables like [sinks.NAME]")
    sinks = {}
    for name, options in data.items():
        path = ("sinks", name)
        if not isinstance(options, dict):
            raise v.fail(path, "expected a table")
        kind = options.get("type")
        if kind not in SINK_OPTIONS:
            raise v.fail((*path, "type"), f"expected one of {', '.join(map(repr, SINK_OPTIONS))}, got {kind!r}")
        clean = v.section(path, options, {**SINK_COMMON, **SINK_OPTIONS[kind]})
        if kind == "mqtt" and not clean.get("url"):
            raise v.fail(path, "missing required key 'url'")
        sinks[name] = clean
    config.daemon["sinks"] = sinks


def _query(v, path: tuple[str, ...], options: Any, spec=QUERY) -> dict:
    clean = v.section(path, options, spec)
    sql = clean.get("sql") or clean.get("query")
    if not sql:
        raise v.fail(path, "missing required key 'sql'")
    clean["sql"] = sql
    if clean["mode"] is None:
        clean["mode"] = "snapshot" if clean["snapshot"] else "diff"
    return clean


def _queries(v, config: Config, data: Any) -> None:
    if not isinstance(data, dict):
        raise v.fail(("queries",), "expected tables like [queries.NAME]")
    queries = config.daemon.setdefault("queries", {})
    for name, options in data.items():
        if not _NAME.match(name):
            raise v.fail(("queries", name), "query names use letters, digits, '_', '-' and '.'")
        queries[name] = _query(v, ("queries", name), options)


def _packs(v, config: Config, data: Any) -> None:
    clean = v.section(("packs",), data, PACKS)
    queries = config.daemon.setdefault("queries", {})
    from ..errors import ConfigError

    for pattern in clean["paths"]:
        found = sorted(glob.glob(pattern))
        if not found and not glob.has_magic(pattern):
            raise v.fail(("packs", "paths"), f"no such pack file {pattern!r}")
        for path in found:
            try:
                pack = load_pack(v, path)
            except ConfigError as err:  # point at the config line that named the pack, too
                raise v.fail(("packs", "paths"), str(err)) from None
            for name, query in pack.items():
                queries.setdefault(name, query)
    config.daemon["packs"] = clean


def load_pack(v: _Validator, path: str) -> dict[str, dict]:
    """An osquery pack file's Linux queries, named pack_<pack>_<query> as osquery names them."""
    from ..errors import ConfigError

    try:
        with open(path, encoding="utf-8") as f:
            pack = json.load(f)
    except (OSError, ValueError) as err:
        raise ConfigError(f"pack {path}: {err}") from None
    if not isinstance(pack, dict) or not isinstance(pack.get("queries"), dict):
        raise ConfigError(f"pack {path}: expected an object with a 'queries' object")
    if not _runs_here(pack.get("platform")):
        return {}
    pack_name = re.sub(r"\.(conf|json)$", "", path.rsplit("/", 1)[-1])
    out = {}
    for name, query in pack["queries"].items():
        if not isinstance(query, dict):
            raise ConfigError(f"pack {path}: query {name}: expected an object")
        if not _runs_here(query.get("platform")):
            continue
        options = {
            k: query[k] for k in ("query", "interval", "snapshot", "removed", "description", "value") if k in query
        }
        if isinstance(options.get("interval"), str) and options["interval"].isdigit():
            options["interval"] = int(options["interval"])  # osquery packs often quote numbers
        try:
            out[f"pack_{pack_name}_{name}"] = _query(_Validator("", f"pack {path}"), ("queries", name), options)
        except ConfigError:
            raise
    return out


def _runs_here(platform: Any) -> bool:
    if not platform:
        return True
    return any(p.strip() in ("all", "any", "linux", "posix") for p in str(platform).split(","))


def _cross_check(v, config: Config) -> None:
    from ..sources.manager import table_sources

    sinks = config.daemon.get("sinks", {})
    event_tables = table_sources(config)
    for name, query in config.daemon.get("queries", {}).items():
        for table in query["on"]:
            if table not in event_tables:
                known = ", ".join(sorted(event_tables)) or "none"
                raise v.fail(("queries", name, "on"), f"no source fills {table!r} (event tables: {known})")
        wanted = query["sinks"] if query["sinks"] is not None else list(sinks)
        for sink in wanted:
            if sink not in sinks:
                known = ", ".join(sinks) or "none configured"
                raise v.fail(("queries", name, "sinks"), f"unknown sink {sink!r} (sinks: {known})")
        query["sinks"] = wanted


def _fleet(v, config: Config, data: Any) -> None:
    from ..errors import ConfigError
    from ..sources.mqtt import parse_url

    clean = v.section(("fleet",), data, FLEET)
    if clean["enabled"]:
        if not clean["url"]:
            raise v.fail(("fleet",), "missing required key 'url' (mqtt://host:port)")
        try:
            parse_url(clean["url"])
        except ConfigError as err:
            raise v.fail(("fleet", "url"), str(err)) from None
        if clean["key"] is not None and clean["key_file"] is not None:
            raise v.fail(("fleet", "key_file"), "set key or key_file, not both")
        key = clean["key"]
        if clean["key_file"] is not None:
            try:
                with open(clean["key_file"], encoding="utf-8") as f:
                    key = f.read().strip()
            except (OSError, UnicodeError) as err:
                raise v.fail(("fleet", "key_file"), f"cannot read {clean['key_file']}: {err}") from None
        if key == "":
            raise v.fail(("fleet", "key_file" if clean["key_file"] else "key"), "the key is empty")
        if key is None and not clean["allow_unsigned"]:
            raise v.fail(("fleet",), "set key or key_file (or allow_unsigned = true to accept anyone's SQL)")
        clean["key_bytes"] = key.encode() if key is not None else None
    config.daemon["fleet"] = clean


def host_identifier(config: Config) -> str:
    return config.daemon.get("host", {}).get("identifier") or socket.gethostname()


EXTRA_SECTIONS.update(
    {
        "host": _section("host", HOST),
        "state": _section("state", STATE),
        "schedule": _section("schedule", SCHEDULE),
        "sinks": _sinks,
        "queries": _queries,
        "packs": _packs,
        "decorators": _section("decorators", DECORATORS),
        "control": _section("control", CONTROL),
        "fleet": _fleet,
    }
)
FINAL_CHECKS.append(_cross_check)
