"""osquery's Linux pack queries run unchanged."""

from __future__ import annotations

import streamq
from conftest import compat_json


def test_pack_queries_run_unchanged(conn):
    # All 111: the event and daemon self-tables (hardware_events, osquery_events, osquery_info,
    # osquery_schedule) they read exist now, so none may fail.
    queries = compat_json("osquery-packs-linux.json")["queries"]
    assert len(queries) == 111
    failed = {}
    for q in queries:
        try:
            conn.query(q["query"])
        except streamq.QueryError as err:
            failed[f"{q['pack']}/{q['name']}"] = str(err)
    assert not failed, failed
