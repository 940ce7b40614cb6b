"""Configuration files as Augeas trees: every node, its value and label, with the file it came from.

Augeas (python-augeas over Debian's libaugeas0 and its lenses) parses several
hundred configuration formats; `WHERE path = FILE` loads only the lenses that
claim that file, so the query costs a parse of one file, not of /etc.
"""

from __future__ import annotations

import re

from ..sql.schema import TEXT, Column, table
from ._common import lazy_module

optional = lazy_module("streamq.host.optional")


def _handle(paths: list[str]):
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
    import os

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


@table(
    "augeas",
    "Configuration files parsed by Augeas: one row per node of each file's tree.",
    [
        Column("node", TEXT, "The node's Augeas path, e.g. /files/etc/hosts/1/ipaddr.", index=True),
        Column("value", TEXT, "The node's value."),
        Column("label", TEXT, "The node's label (last path component)."),
        Column("path", TEXT, "The file the node belongs to; `path = FILE` parses just that file.", additional=True),
    ],
    examples=(
        "SELECT node, value FROM augeas WHERE path = '/etc/hosts'",
        "SELECT value FROM augeas WHERE path = '/etc/ssh/sshd_config' AND label = 'PermitRootLogin'",
    ),
    cost=100000,
)
def gen_augeas(ctx):
    paths = [p for p in ctx.eq("path") or () if isinstance(p, str)]
    nodes = [n for n in ctx.eq("node") or () if isinstance(n, str)]
    aug = _handle(paths + [file_of(n) for n in nodes if n.startswith("/files/")] if paths or nodes else [])
    if aug is None:
        return
    patterns = list(nodes)
    for path in paths:
        patterns += [f"/files{path}", f"/files{path}//*"]
    try:
        yield from augeas_rows(aug, "|".join(patterns) if patterns else "/files//*")
    finally:
        aug.close()
