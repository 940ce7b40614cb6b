"""The public Python API and the plugin door: @streamq.table and the streamq.tables entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import streamq
from conftest import ROOT
from streamq.sql import schema


@pytest.fixture
def greetings_table():
    @streamq.table(
        "test_greetings",
        "Words to greet with.",
        [
            streamq.Column("word", streamq.TEXT, "A greeting.", index=True),
            streamq.Column("n", streamq.INTEGER, "Its length."),
        ],
        examples=("SELECT * FROM test_greetings",),
    )
    def gen_greetings(ctx):
        seen.append(ctx.eq("word"))
        for word in ("hello", "hi", "hey"):
            yield {"word": word, "n": len(word)}

    seen: list = []
    yield seen
    schema.REGISTRY.pop("test_greetings", None)


def test_decorated_table_is_queryable_with_pushdown(greetings_table):
    with streamq.connect() as conn:
        assert conn.query("SELECT word, n FROM test_greetings ORDER BY n") == [
            {"word": "hi", "n": 2},
            {"word": "hey", "n": 3},
            {"word": "hello", "n": 5},
        ]
        del greetings_table[:]
        rows = conn.query("SELECT n FROM test_greetings WHERE word IN ('hi', 'hey', 'hi', NULL)")
        assert sorted(r["n"] for r in rows) == [2, 3]
        assert conn.query("SELECT n FROM test_greetings WHERE word IN (SELECT 1 WHERE 0)") == []
    # Each IN value reaches the generator as `=`, once (SQLite drops duplicates and NULLs), and
    # an empty IN list never calls it.
    assert sorted(greetings_table, key=str) == [["hey"], ["hi"]]
    assert isinstance(conn.apsw, object)


def test_query_params_and_raw_connection():
    with streamq.connect() as conn:
        assert conn.query("SELECT ? + 1 AS x", (41,)) == [{"x": 42}]
        assert conn.query("SELECT :a AS x", {"a": "y"}) == [{"x": "y"}]
        assert conn.apsw.execute("SELECT 7").fetchall() == [(7,)]


def test_used_reports_only_the_columns_read():
    used = []

    @streamq.table(
        "test_lazy",
        "Lazy columns.",
        [streamq.Column("a", streamq.INTEGER, "A."), streamq.Column("b", streamq.INTEGER, "B.")],
    )
    def gen_lazy(ctx):
        used.append((ctx.used("a"), ctx.used("b")))
        yield {"a": 1, "b": 2}

    try:
        with streamq.connect() as conn:
            conn.query("SELECT a FROM test_lazy")
            conn.query("SELECT * FROM test_lazy")
        assert used == [(True, False), (True, True)]
    finally:
        schema.REGISTRY.pop("test_lazy", None)


def test_entry_point_plugin_is_loaded_by_the_cli(tmp_path):
    # A distribution installed the way pip lays one out: a module plus a dist-info with entry_points.txt.
    (tmp_path / "weather_table.py").write_text(
        textwrap.dedent(
            """
            import streamq

            @streamq.table("weather", "Today's weather.", [streamq.Column("sky", streamq.TEXT, "The sky.")],
                           examples=("SELECT sky FROM weather",))
            def gen_weather(ctx):
                yield {"sky": "blue"}
            """
        )
    )
    info = tmp_path / "weather_table-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: weather-table\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[streamq.tables]\nweather = weather_table\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    result = subprocess.run(
        [sys.executable, "-m", "streamq", "query", "--json", "SELECT sky FROM weather"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"sky": "blue"}]
