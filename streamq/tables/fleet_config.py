"""The daemon's fleet config as tables: the fragments it knows and the labels it evaluates.

They show locally what the host's retained report tells the fleet (docs/fleet.md), read
through the typed daemon handle (streamq.sql.session.DaemonHandle.fleet_config). Outside
a daemon that accepts fleet config they are empty.
"""

from __future__ import annotations

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import daemon_of


def _fleet_config(ctx):
    daemon = daemon_of(ctx)
    return daemon.fleet_config if daemon is not None else None


@table(
    "streamq_fleet_config",
    "Config fragments pushed over the fleet's broker: the newest version, its fate here, and the version in force.",
    [
        Column("name", TEXT, "Fragment name; its queries run as name/query."),
        Column("version", BIGINT, "The newest version with a good signature."),
        Column("state", TEXT, "What became of that version: applied, skipped, pending, refused or withdrawn."),
        Column("reason", TEXT, "Why it was skipped, is pending or was refused."),
        Column("applied_version", BIGINT, "The version in force here (an older one while the newest is refused)."),
        Column("queries", INTEGER, "Queries of the fragment this host runs now."),
        Column("label", TEXT, "The label the fragment was pushed to, if any."),
        Column("hosts", TEXT, "The hosts it was pushed to, comma-separated; empty for every host."),
        Column("received", BIGINT, "Messages that arrived on its topic."),
        Column("refused", BIGINT, "Messages and versions refused: signature, replay, content, checks."),
        Column("last_error", TEXT, "The most recent refusal."),
        Column("changed", BIGINT, "When its state last changed, unix seconds."),
    ],
    examples=("SELECT name, version, state, applied_version, reason FROM streamq_fleet_config",),
    cost=1,
)
def gen_streamq_fleet_config(ctx):
    config = _fleet_config(ctx)
    if config is None:
        return
    for name, st in sorted(config.fragments.items()):
        yield {
            "name": name,
            "version": st.version,
            "state": st.state,
            "reason": st.reason,
            "applied_version": st.applied,
            "queries": st.queries,
            "label": st.label,
            "hosts": ",".join(st.hosts),
            "received": st.received,
            "refused": st.refused,
            "last_error": st.last_error,
            "changed": st.changed or None,
        }


@table(
    "streamq_fleet_labels",
    "Labels this host evaluates, from its config and the fleet's fragments, and whether it matches each.",
    [
        Column("name", TEXT, "Label name, as in streamq fleet push --label."),
        Column("member", INTEGER, "1 when the label's query returned rows, 0 when not; NULL before it ran."),
        Column("sql", TEXT, "The label's query."),
        Column("interval", BIGINT, "Seconds between evaluations."),
        Column("defined_by", TEXT, "'config' (this host's file) or 'fragment NAME'."),
        Column("evaluated", BIGINT, "When it was last evaluated, unix seconds."),
        Column("error", TEXT, "Why its query failed (the label then does not match)."),
    ],
    examples=("SELECT name, member FROM streamq_fleet_labels",),
    cost=1,
)
def gen_streamq_fleet_labels(ctx):
    config = _fleet_config(ctx)
    if config is None:
        return
    for name, label in sorted(config.labels.labels.items()):
        yield {
            "name": name,
            "member": None if label.member is None else int(label.member),
            "sql": label.options.sql,
            "interval": int(label.options.interval),
            "defined_by": label.defined_by,
            "evaluated": label.evaluated,
            "error": label.error,
        }
