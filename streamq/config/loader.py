"""TOML configuration: load, validate, and name the key path and line of every mistake.

The loader knows no source or sink by name: it asks the ``SOURCES`` and
``SINKS`` registries for each component's options class and checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..sinks import SINKS, sink_class
from ..sources import SOURCES, table_sources
from .options import NamedSourceOptions, OptionError
from .queries import inline_pack_queries, labels, pack_queries, queries
from .sections import SECTIONS, Config, FleetOptions, PackOptions, web_problem
from .validation import Validator


def parse(
    text: str, filename: str = "<config>", *, only: Collection[str] | None = None, base: Config | None = None
) -> Config:
    """Validate TOML ``text``; raise ConfigError naming the file, line and key path.

    ``only`` limits the top-level sections (a fleet fragment's, streamq.config.fragments);
    ``base`` then lends its sources and sinks, which the queries are checked against.
    With ``only`` and no ``base`` that check is skipped: the side that pushes a
    fragment does not know the hosts' sources and sinks.
    """
    raw = _toml(text, filename)
    v = Validator(text, filename)
    config = Config(path=filename, raw=raw, text=text)
    known = {"sources", "sinks", "queries", "labels", *SECTIONS}
    for key in raw:
        if key not in known:
            raise v.fail((key,), f"unknown section (expected one of {', '.join(sorted(known))})")
        if only is not None and key not in only:
            allowed = ", ".join(f"[{name}]" for name in sorted(only))
            raise v.fail((key,), f"not allowed here: this holds only {allowed}")
    for name, cls in SECTIONS.items():
        if name == "packs" and name in raw:
            config.packs = _packs(v, raw[name])
        elif name in raw:
            setattr(config, name, v.section((name,), raw[name], cls))
    if config.fleet is not None:
        config.fleet = _fleet(v, config.fleet)
    problem = web_problem(config.web)
    if problem is not None:
        raise v.fail(("web", problem[0]), problem[1])
    config.sources = _sources(v, raw.get("sources", {})) if base is None else base.sources
    config.sinks = _sinks(v, raw.get("sinks", {})) if base is None else base.sinks
    config.queries = queries(v, raw.get("queries", {}))
    config.labels = labels(v, raw.get("labels", {}))
    for name, query in pack_queries(v, config.packs.paths).items():
        config.queries.setdefault(name, query)
    for name, query in inline_pack_queries(v, config.packs.inline).items():
        config.queries.setdefault(name, query)
    if only is None or base is not None:
        _cross_check(v, config)
    return config


def _toml(text: str, filename: str) -> dict[str, Any]:
    import tomllib  # 40+ ms to import: only when there is a file to read

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        if "(at end of document)" in message:  # tomllib gives no line here; the end is the last line
            message = message.replace("(at end of document)", f"(at end of document, line {len(text.splitlines())})")
        raise ConfigError(f"{filename}: {message}") from None


def _packs(v: Validator, data: Any) -> PackOptions:
    """[packs]: ``paths`` to pack files, and packs written inline as [packs.NAME] tables."""
    if not isinstance(data, dict):
        raise v.fail(("packs",), "expected a table")
    inline = {name: pack for name, pack in data.items() if isinstance(pack, dict)}
    options = v.section(("packs",), {k: x for k, x in data.items() if k not in inline}, PackOptions)
    return dataclasses.replace(options, inline=inline)


def load(path: str | Path | None) -> Config:
    """Read and validate the config file at ``path``; None gives the defaults."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config {path}: {getattr(err, 'strerror', None) or err}") from None
    return parse(text, str(path))


# -- components, through their registries ---------------------------------------------------------


def _sources(v: Validator, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise v.fail(("sources",), "expected a table")
    out: dict[str, Any] = {}
    for kind, options in data.items():
        entry = SOURCES.get(kind)
        if entry is None:
            raise v.fail(("sources", kind), f"unknown source (expected one of {', '.join(SOURCES)})")
        source = entry.load()
        if entry.tables is not None:
            out[kind] = _component(v, ("sources", kind), options, source.Options, owner=source)
            continue
        if not isinstance(options, dict):
            raise v.fail(("sources", kind), f"expected tables like [sources.{kind}.NAME]")
        for instance, opts in options.items():
            path = ("sources", kind, instance)
            clean: NamedSourceOptions = _component(v, path, opts, source.Options, owner=source)
            if clean.table is None:
                clean = dataclasses.replace(clean, table=f"{instance}_events")
            out[f"{kind}.{instance}"] = clean
    return out


def _sinks(v: Validator, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise v.fail(("sinks",), "expected tables like [sinks.NAME]")
    out = {}
    for name, options in data.items():
        path = ("sinks", name)
        if not isinstance(options, dict):
            raise v.fail(path, "expected a table")
        kind = options.get("type")
        if kind not in SINKS:
            raise v.fail((*path, "type"), f"expected one of {', '.join(map(repr, SINKS))}, got {kind!r}")
        out[name] = _component(v, path, options, sink_class(kind).Options, owner=sink_class(kind))
    return out


def _component(v: Validator, path: tuple[str, ...], data: Any, cls: type, owner: Any = None) -> Any:
    """A component's options, then its own checks across options (``owner.validate``)."""
    clean = v.section(path, data, cls)
    validate = getattr(owner, "validate", None)
    if validate is not None:
        try:
            validate(clean)
        except OptionError as err:
            raise v.fail((*path, err.key), str(err)) from None
        except (ValueError, ConfigError) as err:
            raise v.fail(path, str(err)) from None
    return clean


def _fleet(v: Validator, fleet: FleetOptions) -> FleetOptions:
    if not fleet.enabled:
        return fleet
    from ..mqtt import parse_url

    if not fleet.url:
        raise v.fail(("fleet",), "missing required key 'url' (mqtt://host:port)")
    try:
        parse_url(fleet.url)
    except ConfigError as err:
        raise v.fail(("fleet", "url"), str(err)) from None
    if fleet.key is not None and fleet.key_file is not None:
        raise v.fail(("fleet", "key_file"), "set key or key_file, not both")
    key = fleet.key
    if fleet.key_file is not None:
        try:
            with open(fleet.key_file, encoding="utf-8") as f:
                key = f.read().strip()
        except (OSError, UnicodeError) as err:
            raise v.fail(("fleet", "key_file"), f"cannot read {fleet.key_file}: {err}") from None
    if key == "":
        raise v.fail(("fleet", "key_file" if fleet.key_file else "key"), "the key is empty")
    if key is None and not fleet.allow_unsigned:
        raise v.fail(("fleet",), "set key or key_file (or allow_unsigned = true to accept anyone's SQL)")
    if key is None and fleet.accept_config:  # allow_unsigned never extends to configs
        raise v.fail(("fleet", "accept_config"), "needs key or key_file: only signed configs are run")
    return dataclasses.replace(fleet, key_bytes=key.encode() if key is not None else None)


def _cross_check(v: Validator, config: Config) -> None:
    """A query's trigger tables need a source, and its sinks must exist; no sinks named: all."""
    event_tables = table_sources(config.sources)
    for name, query in config.queries.items():
        for table in query.on:
            if table not in event_tables:
                known = ", ".join(sorted(event_tables)) or "none"
                raise v.fail(("queries", name, "on"), f"no source fills {table!r} (event tables: {known})")
        wanted = query.sinks if query.sinks is not None else list(config.sinks)
        for sink in wanted:
            if sink not in config.sinks:
                known = ", ".join(config.sinks) or "none configured"
                raise v.fail(("queries", name, "sinks"), f"unknown sink {sink!r} (sinks: {known})")
        config.queries[name] = dataclasses.replace(query, sinks=list(wanted))
