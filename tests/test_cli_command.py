"""`streamq query`, `tables` and `schema` as a user runs them: formats, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import ROOT, run_cli


def test_pretty_is_an_aligned_table():
    result = run_cli("query", "SELECT 1 AS a, 'xyz' AS bb")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == lines[2] == lines[-1] == "+---+-----+"
    assert lines[1] == "| a | bb  |"
    assert lines[3] == "| 1 | xyz |"


def test_json_is_one_array_of_typed_objects():
    result = run_cli("query", "--json", "SELECT 1 AS n, 2.5 AS f, 'x' AS s, NULL AS z")
    assert result.returncode == 0
    assert json.loads(result.stdout) == [{"n": 1, "f": 2.5, "s": "x", "z": None}]


def test_json_of_no_rows_is_an_empty_array():
    result = run_cli("query", "--json", "SELECT 1 WHERE 0")
    assert json.loads(result.stdout) == []


def test_csv_and_line_modes():
    result = run_cli("query", "--csv", "SELECT 'a,b' AS x, 2 AS y")
    assert list(csv.reader(io.StringIO(result.stdout))) == [["x", "y"], ["a,b", "2"]]
    result = run_cli("query", "--line", "SELECT 1 AS a, 22 AS long_name")
    assert result.stdout.splitlines() == ["        a = 1", "long_name = 22"]


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT * FROM no_such_table", "no such table: no_such_table"),
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM file", "path"),
        ("SELECT * FROM hash", "path"),
    ],
)
def test_sql_errors_exit_1_with_one_line(sql, fragment):
    result = run_cli("query", sql)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2():
    assert run_cli("query").returncode == 2
    assert run_cli("query", "--json", "--csv", "SELECT 1").returncode == 2
    assert run_cli("no-such-command").returncode == 2


def test_text_compared_with_integer_column_is_no_rows_not_an_error():
    result = run_cli("query", "--json", "SELECT pid FROM processes WHERE pid = 'abc'")
    assert result.returncode == 0
    assert json.loads(result.stdout) == []
    result = run_cli("query", "--json", "SELECT pid FROM processes WHERE pid = '1'")
    assert json.loads(result.stdout) == [{"pid": 1}]


def test_missing_file_path_gives_no_rows():
    result = run_cli("query", "--json", "SELECT * FROM file WHERE path = '/no/such/file/here'")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_tables_and_schema():
    result = run_cli("tables")
    names = result.stdout.split()
    assert "processes" in names and "time" in names and names == sorted(names)
    assert run_cli("tables", "proc").stdout.split() == [n for n in names if "proc" in n]
    schema = run_cli("schema", "time")
    assert schema.returncode == 0
    assert "unix_time" in schema.stdout and "CREATE TABLE" in schema.stdout
    missing = run_cli("schema", "nope")
    assert missing.returncode == 1 and "no such table: nope" in missing.stderr


def test_docs_tables_md_is_current():
    generated = run_cli("tables", "--markdown").stdout
    on_disk = (ROOT / "docs" / "tables.md").read_text()
    assert on_disk == generated, "docs/tables.md is stale: run `make docs`"
