"""`IN` lists on pushed-down columns: empty, an empty subquery, NULL only: zero rows, never an error.

Detection packs written for osquery use `x IN (SELECT ...)` everywhere; on a clean host the
subquery is empty, and the query must answer "nothing", not fail.
"""

from __future__ import annotations

import pytest

from streamq.sql.connection import load_tables

EMPTY_LISTS = ("()", "(SELECT 1 WHERE 0)", "(NULL)", "(SELECT NULL)")


def _indexed_columns():
    for name, spec in sorted(load_tables().items()):
        for column in spec.columns:
            if column.pushdown or column.name in ("eid", "time"):
                # A table that needs a constraint gets one on another column, so only the IN decides.
                extra = "" if not spec.required or column.required else f" AND \"{spec.required[0]}\" = '/'"
                yield pytest.param(name, column.name, extra, id=f"{name}.{column.name}")


@pytest.mark.parametrize(("table", "column", "extra"), list(_indexed_columns()))
def test_an_empty_in_list_gives_zero_rows(conn, table, column, extra):
    for empty in EMPTY_LISTS:
        assert conn.query(f'SELECT * FROM "{table}" WHERE "{column}" IN {empty}{extra}') == [], empty


def test_some_columns_are_tested():
    assert len(list(_indexed_columns())) > 40


def test_in_with_values_still_pushes_each_value_down(conn):
    import os

    me = os.getpid()
    rows = conn.query(f"SELECT pid FROM processes WHERE pid IN (1, {me}, NULL, {me})")
    assert sorted(r["pid"] for r in rows) == sorted({1, me})
