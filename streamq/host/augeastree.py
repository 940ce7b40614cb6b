"""Configuration files as Augeas trees (python-augeas over Debian's libaugeas0 and its lenses).

Augeas parses several hundred configuration formats; naming files loads only
the lenses that claim them, so reading one file costs a parse of that file, not of /etc.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from . import optional


def open_tree(paths: list[str]):
    """An Augeas handle with only the lenses that claim ``paths`` loaded (all when empty); None without Augeas."""
    augeas = optional.optional_module("augeas", "python-augeas (it builds against Debian's libaugeas-dev)")
    if augeas is None:
        return None
    try:
        aug = augeas.Augeas(flags=augeas.Augeas.NO_LOAD | augeas.Augeas.SAVE_NOOP)
        if paths:  # keep only the lenses whose include patterns name one of the files
            keep = " and ".join(f". != {_quote(p)}" for p in paths)
            aug.remove(f"/augeas/load/*/incl[{keep}]")
            aug.remove("/augeas/load/*[count(incl) = 0]")
        aug.load()
        return aug
    except (OSError, ValueError, RuntimeError) as err:
        optional.note_once(f"augeas: cannot start: {err}")
        return None


def file_of(node: str, known: dict[str, bool] | None = None) -> str:
    """The file a /files/... node lies in: its longest prefix that is a regular file
    (a node of a directory is its own path, as osquery gives it). ``known`` caches stat results."""
    known = {} if known is None else known
    path = node[len("/files") :]
    while path and path != "/":
        path = re.sub(r"\[\d+\]$", "", path)  # hosts/1[2]: a position, not a file name
        if path not in known:
            known[path] = os.path.isfile(path)
        if known[path]:
            return path
        path = path.rsplit("/", 1)[0]
    return node[len("/files") :]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "") + "'"


def augeas_rows(aug, pattern: str):
    # match/get/label only: python-augeas' ns_attr and ns_path never free the strings
    # libaugeas hands them (measured: 4 MiB leaked per full scan of /etc).
    try:
        nodes = aug.match(pattern)
    except (ValueError, RuntimeError) as err:  # a bad path expression
        optional.note_once(f"augeas: {pattern}: {err}")
        return
    files: dict[str, bool] = {}
    for node in nodes:
        yield {"node": node, "value": aug.get(node) or "", "label": aug.label(node) or "", "path": file_of(node, files)}


def tree_rows(paths: list[str], nodes: list[str]) -> Iterator[dict]:
    """Rows of the files ``paths`` and the nodes ``nodes`` name (every file Augeas knows when neither)."""
    aug = open_tree(paths + [file_of(n) for n in nodes if n.startswith("/files/")] if paths or nodes else [])
    if aug is None:
        return
    patterns = list(nodes)
    for path in paths:
        patterns += [f"/files{path}", f"/files{path}//*"]
    try:
        yield from augeas_rows(aug, "|".join(patterns) if patterns else "/files//*")
    finally:
        aug.close()
