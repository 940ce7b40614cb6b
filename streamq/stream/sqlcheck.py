"""Is a query's result over a stream the same whatever the batches? Found by preparing it.

Without a window, a continuous query runs once per batch of new rows. A filter and
projection gives each row's result from that row alone, so the output is the same
however the rows were batched. An aggregate, DISTINCT, ORDER BY, LIMIT/OFFSET, a
window function or a second read of the stream would give per-batch numbers instead;
those are refused with a message that names the window option.
"""

from __future__ import annotations

import re

import apsw

_AGGREGATE_OPS = {"AggStep", "AggStep1", "AggFinal", "AggValue", "AggInverse", "Count"}
_TEMP_BTREE = re.compile(r"USE TEMP B-TREE FOR (?:RIGHT PART OF )?(GROUP BY|ORDER BY|DISTINCT)")
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/|\(|\)|\w+", re.S)


def batch_dependence(conn: apsw.Connection, sql: str, table: str, *, option: str = "--window") -> str | None:
    """Why ``sql``'s result over ``table`` would depend on batch boundaries, or None."""
    ops = {row[1] for row in conn.execute("EXPLAIN " + sql)}
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    example = f'{option} "tumble 1m"' if option.startswith("--") else f'{option} = "tumble 1m"'
    if ops & _AGGREGATE_OPS or any("GROUP BY" in step for step in plan):
        what = "an aggregate (or window function)"
    else:
        found = {m.group(1) for step in plan for m in [_TEMP_BTREE.search(step)] if m}
        reads = sum(1 for step in plan if re.match(rf"(SCAN|SEARCH) {re.escape(table)}\b", step))
        if "DISTINCT" in found:
            what = "DISTINCT"
        elif "ORDER BY" in found:
            what = "ORDER BY"
        elif _top_level_limit(sql):
            what = "LIMIT/OFFSET"
        elif reads > 1:
            what = f"reading {table} twice (a self-join or a subquery)"
        else:
            return None
    return (
        f"{what} over a stream would give per-batch results that depend on how the input was chunked; "
        f"give it a window ({example}, over which it runs exactly once)"
    )


def _top_level_limit(sql: str) -> bool:
    depth = 0
    for token in _TOKENS.findall(sql):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token.upper() in ("LIMIT", "OFFSET"):
            return True
    return False


def result_names(db: apsw.Connection, sql: str) -> list[str]:
    """The columns ``sql`` returns, from its prepared statement (nothing is run)."""
    names: list[str] = []

    def capture(cursor: apsw.Cursor, statement: str, bindings: object) -> bool:
        names[:] = [d[0] for d in cursor.get_description()]
        return False  # stop before the first step

    cursor = db.cursor()
    cursor.exec_trace = capture
    try:
        cursor.execute(sql)
    except apsw.ExecTraceAbort:
        pass
    return names
