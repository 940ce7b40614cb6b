"""Named SQL in a config: [queries.NAME], osquery packs (files or [packs.NAME], queries named
pack_<pack>_<query>) and [labels.NAME]."""

from __future__ import annotations

import dataclasses
import glob
import json
import re
from typing import Any

from ..errors import ConfigError
from ..stream.spec import StreamSpec, stream_spec
from .sections import LabelOptions, QueryOptions
from .validation import Validator

_QUERY_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def query_options(v: Validator, path: tuple[str, ...], data: Any) -> QueryOptions:
    """One query, with osquery's spellings (``query``, ``snapshot = true``) resolved."""
    sql = data.get("sql", data.get("query")) if isinstance(data, dict) else None
    clean = v.section(path, data, QueryOptions, **({"sql": sql} if sql is not None else {}))
    if not clean.sql:
        raise v.fail(path, "missing required key 'sql'")
    if clean.window is not None:
        if clean.mode not in (None, "stream") or clean.snapshot:
            raise v.fail((*path, "window"), "a window reads events as they come: it goes with mode = 'stream'")
        if clean.format == "batch":
            raise v.fail((*path, "format"), "window results are written one line per row (format = 'event')")
        clean = dataclasses.replace(clean, mode="stream")
    if clean.mode is None:
        clean = dataclasses.replace(clean, mode="snapshot" if clean.snapshot else "diff")
    try:
        stream_options(clean)
    except ValueError as err:
        raise v.fail(path, str(err)) from None
    return clean


def stream_options(query: QueryOptions) -> StreamSpec:
    """A query's streaming options as the engine takes them; ValueError if they do not go together."""
    return stream_spec(
        window=query.window,
        window_key=query.window_key,
        emit=query.emit,
        grace=query.grace,
        dedup=query.dedup,
        dedup_for=query.dedup_for,
        limit=query.limit,
    )


def queries(v: Validator, data: Any) -> dict[str, QueryOptions]:
    if not isinstance(data, dict):
        raise v.fail(("queries",), "expected tables like [queries.NAME]")
    out = {}
    for name, options in data.items():
        if not _QUERY_NAME.match(name):
            raise v.fail(("queries", name), "query names use letters, digits, '_', '-' and '.'")
        out[name] = query_options(v, ("queries", name), options)
    return out


def pack_queries(v: Any, patterns: list[str]) -> dict[str, Any]:
    """Every query of the pack files ``patterns`` name; a missing literal file is an error."""
    out: dict[str, Any] = {}
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if not found and not glob.has_magic(pattern):
            raise v.fail(("packs", "paths"), f"no such pack file {pattern!r}")
        for path in found:
            try:
                pack = load_pack(path)
            except ConfigError as err:  # point at the config line that named the pack, too
                raise v.fail(("packs", "paths"), str(err)) from None
            for name, query in pack.items():
                out.setdefault(name, query)
    return out


def load_pack(path: str) -> dict[str, Any]:
    """A pack file's queries that run on Linux, validated like [queries.*]."""
    try:
        with open(path, encoding="utf-8") as f:
            pack = json.load(f)
    except (OSError, ValueError) as err:
        raise ConfigError(f"pack {path}: {err}") from None
    pack_name = re.sub(r"\.(conf|json)$", "", path.rsplit("/", 1)[-1])
    return pack_from_object(pack, pack_name, f"pack {path}")


def inline_pack_queries(v: Validator, packs: dict[str, Any]) -> dict[str, QueryOptions]:
    """The queries of packs written in the config itself ([packs.NAME], osquery's pack objects)."""
    out: dict[str, QueryOptions] = {}
    for name, pack in packs.items():
        if not _QUERY_NAME.match(name):
            raise v.fail(("packs", name), "pack names use letters, digits, '_', '-' and '.'")
        try:
            out.update(pack_from_object(pack, name, f"{v.filename}: packs.{name}"))
        except ConfigError as err:
            raise v.fail(("packs", name), str(err)) from None
    return out


def pack_from_object(pack: Any, pack_name: str, where: str) -> dict[str, QueryOptions]:
    """An osquery pack object's queries that run on Linux, named pack_<pack>_<query>."""
    if not isinstance(pack, dict) or not isinstance(pack.get("queries"), dict):
        raise ConfigError(f"{where}: expected an object with a 'queries' object")
    if not _runs_here(pack.get("platform")):
        return {}
    out = {}
    for name, query in pack["queries"].items():
        if not isinstance(query, dict):
            raise ConfigError(f"{where}: query {name}: expected an object")
        if not _runs_here(query.get("platform")):
            continue
        options = {
            k: query[k] for k in ("query", "interval", "snapshot", "removed", "description", "value") if k in query
        }
        if isinstance(options.get("interval"), str) and options["interval"].isdigit():
            options["interval"] = int(options["interval"])  # osquery packs often quote numbers
        out[f"pack_{pack_name}_{name}"] = query_options(Validator("", where), ("queries", name), options)
    return out


def labels(v: Validator, data: Any) -> dict[str, LabelOptions]:
    """[labels.NAME]: named read-only queries that decide which fleet fragments apply here."""
    if not isinstance(data, dict):
        raise v.fail(("labels",), "expected tables like [labels.NAME]")
    out = {}
    for name, options in data.items():
        if not _QUERY_NAME.match(name):
            raise v.fail(("labels", name), "label names use letters, digits, '_', '-' and '.'")
        out[name] = v.section(("labels", name), options, LabelOptions)
    return out


def _runs_here(platform: Any) -> bool:
    if not platform:
        return True
    return any(p.strip() in ("all", "any", "linux", "posix") for p in str(platform).split(","))
