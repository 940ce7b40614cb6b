"""Configuration files as Augeas trees: every node, its value and label, with the file it came from.

Augeas (python-augeas over Debian's libaugeas0 and its lenses, read in host/augeastree)
parses several hundred configuration formats; `WHERE path = FILE` loads only the lenses
that claim that file, so the query costs a parse of one file, not of /etc.
"""

from __future__ import annotations

from ..sql.schema import TEXT, Column, table
from ._common import lazy_module

augeastree = lazy_module("streamq.host.augeastree")


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
    yield from augeastree.tree_rows(paths, nodes)
