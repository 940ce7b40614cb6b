"""osquery's self-description tables answered for streamq: flags, packs, registry, extensions.

streamq's "flags" are its configuration keys (defaults from the embedded
default config, values from the running daemon's config); packs are the
osquery pack files the daemon loaded; the registry lists tables, event
sources and sinks; extensions are streamq itself and its table plugins.
"""

from __future__ import annotations

import json
import os
import re

from ..sql import schema
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ..sql.session import DaemonHandle
from ._common import daemon_of, lazy_module

plugins = lazy_module("streamq.sql.plugins")

_INSTANCE_SECTIONS = ("queries", "sinks")  # named instances, not settings


def _default_config() -> tuple[dict, str]:
    import tomllib
    from importlib import resources

    text = resources.files("streamq").joinpath("default.toml").read_text(encoding="utf-8")
    return tomllib.loads(text), text


def _comment_of(text: str, dotted: str) -> str:
    """The comment after `key = ...` inside the key's own [section] of the default config."""
    section, _, key = dotted.rpartition(".")
    current = ""
    for line in text.splitlines():
        header = re.match(r"^\[([^\]]+)\]", line.strip())
        if header:
            current = header.group(1).strip()
            continue
        match = re.match(rf"^\s*{re.escape(key)}\s*=.*?#\s*(.+)$", line)
        if match and current == section:
            return match.group(1).strip()
    return ""


def _flatten(data: dict, prefix: str = ""):
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if name not in _INSTANCE_SECTIONS and not name.startswith(tuple(f"{s}." for s in _INSTANCE_SECTIONS)):
                yield from _flatten(value, name + ".")
        else:
            yield name, value


def _type_name(value) -> str:
    return {bool: "bool", int: "int64", float: "double", list: "list"}.get(type(value), "string")


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _lookup(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@table(
    "osquery_flags",
    "streamq's configuration keys as osquery's flags: type, default and the running daemon's value.",
    [
        Column("name", TEXT, "Key, section.option."),
        Column("type", TEXT, "Value type: bool, int64, double, string or list."),
        Column("description", TEXT, "What the key does (the default config's comment)."),
        Column("default_value", TEXT, "Default value."),
        Column("value", TEXT, "Value in the running daemon's config; the default outside a daemon."),
        Column("shell_only", INTEGER, "1 for a shell-only option; streamq has none (0)."),
    ],
    examples=("SELECT name, default_value, value FROM osquery_flags WHERE value != default_value",),
    cost=50,
)
def gen_osquery_flags(ctx):
    defaults, text = _default_config()
    daemon = daemon_of(ctx)
    raw = daemon.config.raw if daemon is not None else {}
    for name, default in _flatten(defaults):
        current = _lookup(raw, name)
        yield {
            "name": name,
            "type": _type_name(default),
            "description": _comment_of(text, name),
            "default_value": _text(default),
            "value": _text(default if current is None else current),
            "shell_only": 0,
        }


def _pack_files(daemon: DaemonHandle | None) -> list[str]:
    import glob

    files = []
    for pattern in daemon.config.packs.paths if daemon is not None else ():
        files.extend(sorted(glob.glob(pattern)))
    return list(dict.fromkeys(files))


@table(
    "osquery_packs",
    "The osquery pack files the running daemon loaded, with how many of their queries it schedules.",
    [
        Column("name", TEXT, "Pack name (its file name without .conf/.json)."),
        Column("platform", TEXT, "Platform the pack declares."),
        Column("version", TEXT, "Minimum osquery version the pack declares."),
        Column("shard", INTEGER, "Shard percentage the pack declares."),
        Column("discovery_cache_hits", INTEGER, "Discovery query cache hits; streamq runs no discovery queries (0)."),
        Column("discovery_executions", INTEGER, "Discovery queries run (0)."),
        Column("active", INTEGER, "1 when the daemon schedules at least one of the pack's queries."),
    ],
    examples=("SELECT name, platform, active FROM osquery_packs",),
    cost=10,
)
def gen_osquery_packs(ctx):
    daemon = daemon_of(ctx)
    scheduled = set(daemon.queries) if daemon is not None else set()
    for path in _pack_files(daemon):
        try:
            with open(path, encoding="utf-8") as f:
                pack = json.load(f)
        except (OSError, ValueError):
            continue
        name = re.sub(r"\.(conf|json)$", "", os.path.basename(path))
        shard = pack.get("shard")
        yield {
            "name": name,
            "platform": pack.get("platform"),
            "version": pack.get("version"),
            "shard": int(shard) if str(shard).isdigit() else None,
            "discovery_cache_hits": 0,
            "discovery_executions": 0,
            "active": int(any(q.startswith(f"pack_{name}_") for q in scheduled)),
        }


def _extensions() -> list[dict]:
    """streamq itself (uuid 0) and each table plugin package (1, 2, ...)."""
    rows = [
        {
            "uuid": 0,
            "name": "core",
            "version": _version("streamq"),
            "sdk_version": "0.0.0",
            "path": os.path.dirname(os.path.dirname(__file__)),
            "type": "core",
        }
    ]
    modules = sorted({t.split(":", 1)[0] for t in plugins.entry_point_modules() if not t.startswith("streamq.")})
    for number, module in enumerate(modules, 1):
        top = module.split(".", 1)[0]
        rows.append(
            {
                "uuid": number,
                "name": top,
                "version": _version(top),
                "sdk_version": "0.0.0",
                "path": module,
                "type": "extension",
            }
        )
    return rows


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@table(
    "osquery_extensions",
    "streamq (core) and the table plugins it loaded through the streamq.tables entry point.",
    [
        Column("uuid", BIGINT, "0 for streamq itself, then 1, 2... for each plugin package."),
        Column("name", TEXT, "core, or the plugin's package name."),
        Column("version", TEXT, "Version."),
        Column("sdk_version", TEXT, "osquery SDK version; plugins load in-process, so 0.0.0."),
        Column("path", TEXT, "Where the code is: streamq's package directory, or the plugin's module."),
        Column("type", TEXT, "core or extension."),
    ],
    examples=("SELECT name, version, type FROM osquery_extensions",),
    cost=5,
)
def gen_osquery_extensions(ctx):
    yield from _extensions()


@table(
    "osquery_registry",
    "What streamq has registered: every table, and in a running daemon its event sources and sinks.",
    [
        Column("registry", TEXT, "table, event_source or sink."),
        Column("name", TEXT, "Name of the item."),
        Column("owner_uuid", INTEGER, "uuid of the extension that registered it (osquery_extensions); 0 for streamq."),
        Column("internal", INTEGER, "1 when built into streamq."),
        Column("active", INTEGER, "1 when in use: tables always; sources while running."),
    ],
    examples=("SELECT registry, count(*) FROM osquery_registry GROUP BY registry",),
    cost=500,
)
def gen_osquery_registry(ctx):
    owners = {row["path"].split(".", 1)[0]: row["uuid"] for row in _extensions() if row["type"] == "extension"}
    for name, spec in sorted(schema.REGISTRY.items()):
        builtin = spec.module.startswith("streamq.")
        owner = 0 if builtin else owners.get(spec.module.split(".", 1)[0], 0)
        yield {"registry": "table", "name": name, "owner_uuid": owner, "internal": int(builtin), "active": 1}
    session = ctx.session
    statuses = session.rings.status if session is not None else {}
    for status in {s.source: s for s in statuses.values() if s.source}.values():
        yield {
            "registry": "event_source",
            "name": status.source,
            "owner_uuid": 0,
            "internal": 1,
            "active": int(bool(status.active)),
        }
    daemon = daemon_of(ctx)
    for name in sorted(daemon.sinks if daemon is not None else {}):
        yield {"registry": "sink", "name": name, "owner_uuid": 0, "internal": 1, "active": 1}
