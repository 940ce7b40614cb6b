"""Fleet config fragments: what `streamq fleet push` may hand a daemon, and the config a daemon runs.

A fragment is TOML with the parts of a config osquery's config server hands out:
[queries.*], inline [packs.NAME], [decorators] and [labels.*]. It is validated by the
same loader as a config file (:func:`streamq.config.loader.parse` with ``only``), so
it accepts exactly what a config file accepts in those sections. Anything that could
send data elsewhere or widen access (sinks, sources, keys, the state or control
paths, pack files on the host) is refused, and with it the whole fragment.

A daemon runs its own config file merged with the fragments it applied: a fragment's
queries are named ``<fragment>/<query>``, which no query of a config file can be
(names there have no '/'), so the two never clash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping

from ..errors import ConfigError
from .loader import parse
from .sections import Config, DecoratorOptions

SECTIONS = ("queries", "packs", "decorators", "labels")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
_LABEL = re.compile(r"^[A-Za-z0-9_.\-]+$")  # as [labels.NAME] names are (streamq.config.queries)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a fragment (it becomes a topic level and a query-name prefix), or None."""
    if not _NAME.match(name):
        return f"fragment name {name!r}: use 1-64 letters, digits, '_', '-' and '.', not starting with '-' or '.'"
    return None


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot name a label ([labels.NAME] names), or None."""
    if not _LABEL.match(label):
        return f"label {label!r}: use letters, digits, '_', '-' and '.'"
    return None


def parse_fragment(text: str, name: str, base: Config | None = None) -> Config:
    """Fragment ``name``'s TOML, validated; its queries are checked against ``base``'s sources and sinks.

    Without ``base`` (the pushing side) only the fragment itself is checked.
    """
    problem = name_problem(name)
    if problem:
        raise ConfigError(problem)
    config = parse(text, f"fragment {name}", only=SECTIONS, base=base)
    if config.packs.paths:
        raise ConfigError(f"fragment {name}: packs.paths: a fragment writes its packs inline ([packs.NAME]), not files")
    return config


def merge(local: Config, fragments: Mapping[str, Config]) -> Config:
    """``local`` (a config file) with the queries and decorators of ``fragments`` (name -> parsed fragment)."""
    if not fragments:
        return local
    queries = dict(local.queries)
    decorators = local.decorators
    for name in sorted(fragments):
        fragment = fragments[name]
        for query, options in fragment.queries.items():
            queries[f"{name}/{query}"] = options
        decorators = _decorators(decorators, fragment.decorators)
    return local.replace(queries=queries, decorators=decorators)


def _decorators(a: DecoratorOptions, b: DecoratorOptions) -> DecoratorOptions:
    interval = {seconds: list(sqls) for seconds, sqls in a.interval.items()}
    for seconds, sqls in b.interval.items():
        interval.setdefault(seconds, []).extend(sqls)
    return dataclasses.replace(a, load=[*a.load, *b.load], always=[*a.always, *b.always], interval=interval)


def config_hash(local: Config, fragments: Mapping[str, Config]) -> str:
    """osquery's config_hash, of what a daemon runs: its config file and every fragment in force."""
    text = local.text + "".join(f"\0{name}\0{fragments[name].text}" for name in sorted(fragments))
    return hashlib.sha1(text.encode()).hexdigest()
