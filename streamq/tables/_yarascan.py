"""YARA scans for yara_file and yara_process, through yara-python (libyara).

Rules come from the query: `sigfile = PATH` (source or compiled with yarac),
`sigrule = TEXT`, or `sig_group = NAME` (a group of rule files from the
`[yara] signatures` config section). Compiled rule files are cached by path,
size and mtime. Scans use fast mode (one match per string is enough), as osquery.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from functools import lru_cache

from ._common import lazy_module
from ._optional import note_once, optional_module

globbing = lazy_module("streamq.host.globbing")

# Group name -> rule files; filled from the [yara] config section by the daemon.
SIGNATURE_GROUPS: dict[str, list[str]] = {}
SCAN_TIMEOUT = 60  # seconds per file or process; a huge process must not hold a query forever


def _yara():
    return optional_module("yara", "yara-python")


@lru_cache(maxsize=64)
def _compiled_file(path: str, _size: int, _mtime: int):
    yara = _yara()
    try:
        return yara.load(path)  # a file compiled by yarac
    except yara.Error:
        return yara.compile(filepath=path)


def _file_rules(path: str):
    try:
        st = os.stat(path)
        return _compiled_file(path, st.st_size, st.st_mtime_ns)
    except (OSError, _yara().Error) as err:
        note_once(f"yara: cannot use rule file {path}: {err}")
        return None


@lru_cache(maxsize=16)
def _compiled_source(source: str):
    return _yara().compile(source=source)


def _source_rules(source: str):
    try:
        return _compiled_source(source)
    except _yara().Error as err:
        note_once(f"yara: cannot compile sigrule: {err}")
        return None


def _group_rules(group: str):
    files = SIGNATURE_GROUPS.get(group)
    if not files:
        note_once(f"yara: no signature group {group!r} in the [yara] config section")
        return None
    try:
        return _compiled_group(tuple(files))
    except (OSError, _yara().Error) as err:
        note_once(f"yara: cannot compile signature group {group!r}: {err}")
        return None


@lru_cache(maxsize=16)
def _compiled_group(files: tuple[str, ...]):
    return _yara().compile(filepaths={str(i): f for i, f in enumerate(files)})


def rule_sets(ctx) -> list[tuple[dict, object]]:
    """(columns naming the rules, compiled rules) for each rule source the query gives."""
    if _yara() is None:
        return []
    sets = []
    for column, compile_ in (("sig_group", _group_rules), ("sigfile", _file_rules), ("sigrule", _source_rules)):
        for value in ctx.eq(column) or ():
            if isinstance(value, str) and (rules := compile_(value)) is not None:
                sets.append(({column: value}, rules))
    if not sets and ctx.eq("sigurl") is None:
        note_once("yara: give sigfile, sigrule or sig_group in the query's WHERE clause to scan")
    return sets


def match_columns(matches: Iterable) -> dict:
    """osquery's columns for yara-python's matches: names, count, "$id:hexoffset" strings, tags."""
    names, strings, tags = [], [], []
    for match in matches:
        names.append(match.rule)
        tags.extend(match.tags)
        for string in match.strings:
            strings.extend(f"{string.identifier}:{instance.offset:x}" for instance in string.instances)
    return {"matches": ",".join(names), "count": len(names), "strings": ",".join(strings), "tags": ",".join(tags)}


def _row(key: dict, source: dict, matches, pid_ns) -> dict:
    return {
        **key,
        "sig_group": "",
        "sigfile": "",
        "sigrule": "",
        **source,
        **match_columns(matches),
        "sigurl": None,
        "pid_with_namespace": pid_ns,
    }


def _namespace_roots(ctx) -> list[tuple[int | None, bytes]]:
    pids = ctx.eq("pid_with_namespace")
    if pids is None:
        return [(None, b"")]
    return [(p, f"/proc/{p}/root".encode()) for p in pids if isinstance(p, int) and p > 0]


def scan_files(ctx, paths: Iterable[str]) -> Iterator[dict]:
    sets = rule_sets(ctx)
    if not sets:
        return
    yara = _yara()
    paths = list(paths)
    for pid_ns, root in _namespace_roots(ctx):
        for path in paths:
            fs = globbing.fs_path(path, root)
            try:
                if not stat.S_ISREG(os.stat(fs).st_mode):
                    continue  # devices, FIFOs and /proc files can block or never end
            except OSError:
                continue
            for source, rules in sets:
                try:
                    matches = rules.match(os.fsdecode(fs), fast=True, timeout=SCAN_TIMEOUT)
                except yara.Error:
                    continue  # unreadable or vanished
                yield _row({"path": path}, source, matches, pid_ns)


def scan_processes(ctx, pids: list[int]) -> Iterator[dict]:
    sets = rule_sets(ctx)
    if not sets:
        return
    yara = _yara()
    for pid in pids:
        for source, rules in sets:
            try:
                matches = rules.match(pid=pid, fast=True, timeout=SCAN_TIMEOUT)
            except yara.Error as err:
                note_once(f"yara: cannot scan process {pid}: {err}")
                continue
            yield _row({"pid": pid}, source, matches, None)
