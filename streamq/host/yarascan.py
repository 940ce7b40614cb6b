"""YARA scans for yara_file and yara_process, through yara-python (libyara).

Rules are named the way a query names them: ``sigfile`` (a path, source or
compiled with yarac), ``sigrule`` (rule text) or ``sig_group`` (a group of rule
files from the ``[yara] signatures`` config section, which the daemon puts in
SIGNATURE_GROUPS). Compiled rule files are cached by path, size and mtime.
Scans use fast mode (one match per string is enough), as osquery.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache

from .optional import note_once, optional_module

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


def group_rules(files: Iterable[str]):
    """The rule files of a signature group compiled together (one namespace each).

    Raises OSError or yara.Error (yara_error() names it) for a file that is missing or does not compile.
    """
    return _compiled_group(tuple(files))


def yara_error() -> type[Exception]:
    """yara-python's error class (scan and compile errors derive from it)."""
    return _yara().Error


RULE_COLUMNS = ("sig_group", "sigfile", "sigrule")


def available() -> bool:
    """Whether yara-python loads (a missing one is reported once)."""
    return _yara() is not None


def rules(column: str, value: str):
    """The compiled rules a ``sig_group``, ``sigfile`` or ``sigrule`` value names, or None (reported once)."""
    compile_ = {"sig_group": _group_rules, "sigfile": _file_rules, "sigrule": _source_rules}[column]
    return compile_(value)


def match_columns(matches: Iterable) -> dict:
    """osquery's columns for yara-python's matches: names, count, "$id:hexoffset" strings, tags."""
    names, strings, tags = [], [], []
    for match in matches:
        names.append(match.rule)
        tags.extend(match.tags)
        for string in match.strings:
            strings.extend(f"{string.identifier}:{instance.offset:x}" for instance in string.instances)
    return {"matches": ",".join(names), "count": len(names), "strings": ",".join(strings), "tags": ",".join(tags)}


def scan_file(compiled, path: bytes) -> list | None:
    """The matches of ``compiled`` in the file at ``path``, or None when it cannot be read."""
    try:
        return compiled.match(os.fsdecode(path), fast=True, timeout=SCAN_TIMEOUT)
    except _yara().Error:
        return None  # unreadable or vanished


def scan_process(compiled, pid: int) -> list | None:
    """The matches of ``compiled`` in the memory of ``pid``, or None (reported once) when it cannot be read."""
    try:
        return compiled.match(pid=pid, fast=True, timeout=SCAN_TIMEOUT)
    except _yara().Error as err:
        note_once(f"yara: cannot scan process {pid}: {err}")
        return None
