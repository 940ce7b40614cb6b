"""The PostgreSQL sink against a private cluster (initdb on a free port): rows, unique keys, outages, kill -9."""

from __future__ import annotations

import asyncio
import re
import time

import apsw
import orjson
import pytest
from pg_cluster import pg_fixture  # noqa: F401  (the fixture)
from sink_harness import BIG_QUERIES, FeedDaemon, Outbox, result_lines, unique_name, until

from conftest import ROOT, retry, run_cli

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'streamq[postgres]')")

from streamq.sinks.postgres import CREATE, PostgresSink, PostgresUnavailable


def sink_for(pg, table: str) -> PostgresSink:
    return PostgresSink("p", {"type": "postgres", "dsn": pg.dsn, "table": table}, host="h1")


async def test_each_line_is_one_row(pg, tmp_path):
    table = unique_name("t")
    added = result_lines("ports", 4, [{"name": "sshd", "port": 22}, {"name": "nginx", "port": 443}], start=1)
    removed = result_lines("ports", 4, [{"name": "old", "port": 8080}], action="removed")
    snapshot = orjson.dumps({"name": "snap", "hostIdentifier": "h1", "unixTime": 1704067200, "epoch": 0,
                             "counter": 2, "snapshot": [{"a": 1}], "action": "snapshot", "decorations": {"d": 1},
                             "id": "h1:snap:0:2:0"})  # fmt: skip
    async with Outbox(tmp_path, sink_for(pg, table)) as box:
        await box.commit("ports", removed + added)
        await box.commit("snap", [snapshot])
        assert await until(lambda: box.sink.stats.sent == 4)
    rows = pg.query(f"SELECT id, host, name, action, extract(epoch FROM time)::bigint, counter, columns, decorations "
                    f"FROM {table} ORDER BY id")  # fmt: skip
    assert rows == [
        ("h1:ports:0:4:0", "h1", "ports", "removed", 1704067200, 4, {"name": "old", "port": 8080}, {}),
        ("h1:ports:0:4:1", "h1", "ports", "added", 1704067200, 4, {"name": "sshd", "port": 22}, {}),
        ("h1:ports:0:4:2", "h1", "ports", "added", 1704067200, 4, {"name": "nginx", "port": 443}, {}),
        ("h1:snap:0:2:0", "h1", "snap", "snapshot", 1704067200, 2, [{"a": 1}], {"d": 1}),
    ]


async def test_a_resend_inserts_nothing_twice(pg):
    table = unique_name("t")
    sink = sink_for(pg, table)
    await sink.start()
    try:
        lines = result_lines("q", 1, [{"i": i} for i in range(1000)])
        await sink.send("q", lines)
        await sink.send("q", lines + result_lines("q", 2, [{"i": 1000}]))  # Delivery resends whole runs
    finally:
        await sink.close()
    assert pg.query(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [(1001, 1001)]


async def test_server_away_rows_wait_then_arrive(pg, tmp_path):
    table = unique_name("t")
    sink = sink_for(pg, table)
    async with Outbox(tmp_path, sink) as box:
        await box.commit("q", result_lines("q", 1, [{"i": 0}]))
        assert await until(lambda: sink.stats.sent == 1)
        await asyncio.to_thread(pg.stop)
        try:
            for counter in range(2, 12):
                await box.commit("q", result_lines("q", counter, [{"i": counter}]))
            assert await until(lambda: sink.stats.failed >= 2, timeout=15), sink.stats
            with pytest.raises(PostgresUnavailable):
                await sink.send("q", result_lines("q", 99, [{"i": 99}]))
            assert (await box.backlog())[1] >= 10
        finally:
            await asyncio.to_thread(pg.start)
        assert await until(lambda: sink.stats.sent == 11, timeout=40), sink.stats
    counters = [c for (c,) in pg.query(f"SELECT counter FROM {table} ORDER BY counter")]
    assert counters == list(range(1, 12))


def test_kill9_mid_delivery_is_exactly_once(tmp_path, pg, request):
    table = unique_name("t")
    daemon = FeedDaemon(tmp_path, f'type = "postgres"\ndsn = "{pg.dsn}"\ntable = "{table}"\n', extra=BIG_QUERIES)
    request.addfinalizer(daemon.stop)

    def stored() -> int:
        try:
            return pg.query(f"SELECT count(*) FROM {table}")[0][0]
        except Exception:  # the table is created on the sink's first connect
            return 0

    # A slow database: each INSERT statement waits 0.4 s, so the eight batches take seconds and
    # the kill lands while some still wait in the outbox.
    for statement in CREATE.format(table=table, index=table).split(";"):
        pg.query(statement)
    pg.query(f"CREATE FUNCTION {table}_slow() RETURNS trigger LANGUAGE plpgsql AS "
             "$$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$")  # fmt: skip
    pg.query(f"CREATE TRIGGER slow BEFORE INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {table}_slow()")
    daemon.start()
    assert retry(lambda: stored() > 0, timeout=20, interval=0.02)
    daemon.kill9()
    with apsw.Connection(str(tmp_path / "state.db")) as db:
        left = db.execute("SELECT coalesce(sum(rows), 0) FROM outbox WHERE sink = 'out'").fetchall()[0][0]
    assert left > 0, "the kill came after delivery ended: nothing to resend"
    daemon.start()
    assert retry(lambda: stored() >= 40_000, timeout=60), stored()
    time.sleep(0.5)
    numbers = f"SELECT count(*), count(DISTINCT id), min((columns->>'n')::int), max((columns->>'n')::int) FROM {table}"
    assert pg.query(numbers) == [(40_000, 40_000, 0, 39_999)]  # each row once: no loss, no repeat


async def test_the_documented_fleet_query_runs(pg):
    """docs/sinks.md's fleet-wide history example, on rows from two hosts."""
    sql = re.search(r"```sql\n(.*?)```", (ROOT / "docs" / "sinks.md").read_text(), re.S).group(1)
    now = int(time.time())
    lines = []
    for host, ports in (("web-1", [22, 443]), ("web-2", [22, 8443])):
        for line in result_lines("new_listening_ports", 1, [{"name": "p", "port": p} for p in ports], host=host):
            item = orjson.loads(line)
            lines.append(orjson.dumps({**item, "unixTime": now - 60}))
    old = orjson.loads(result_lines("new_listening_ports", 0, [{"name": "p", "port": 1}], host="web-3")[0])
    lines.append(orjson.dumps({**old, "unixTime": now - 3 * 86400}))  # two days too old
    sink = sink_for(pg, "streamq_results")
    await sink.start()
    try:
        await sink.send("new_listening_ports", lines)
    finally:
        await sink.close()
    rows = pg.query(sql)
    assert sorted((host, port) for host, _, port, _ in rows) == [
        ("web-1", 22),
        ("web-1", 443),
        ("web-2", 22),
        ("web-2", 8443),
    ]


def test_bad_options_are_config_errors(tmp_path):
    cfg = tmp_path / "bad.toml"
    for options, words in (('dsn = "host=x"\ntable = "Bad-Name"', "table"), ('dsn = "nonsense = ="', "dsn")):
        cfg.write_text(f'[sinks.p]\ntype = "postgres"\n{options}\n[queries.q]\nsql = "SELECT 1"\ninterval = 60\n')
        result = run_cli("run", "--check", "-c", str(cfg))
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
