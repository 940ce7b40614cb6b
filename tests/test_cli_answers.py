"""The CLI says exactly what it found: one result set per statement, usage errors, --version, stdin."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

import streamq
from conftest import ROOT, run_cli

TWO = "select 1 as a, 2 as b; select 'x' as c"


def test_two_statements_print_two_result_sets_in_pretty_mode():
    result = run_cli("query", TWO)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "+---+---+",
        "| a | b |",
        "+---+---+",
        "| 1 | 2 |",
        "+---+---+",
        "+---+",
        "| c |",
        "+---+",
        "| x |",
        "+---+",
    ]


def test_two_statements_json_is_one_array_per_statement():
    result = run_cli("query", "--json", TWO)
    assert result.returncode == 0, result.stderr
    decoder, text, sets = json.JSONDecoder(), result.stdout, []
    pos = 0
    while pos < len(text.rstrip()):
        value, pos = decoder.raw_decode(text, pos)
        sets.append(value)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    assert sets == [[{"a": 1, "b": 2}], [{"c": "x"}]]


def test_two_statements_csv_and_line_are_separate_sets():
    result = run_cli("query", "--csv", TWO)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("\n\n")
    assert list(csv.reader(io.StringIO(first))) == [["a", "b"], ["1", "2"]]
    assert list(csv.reader(io.StringIO(second))) == [["c"], ["x"]]
    result = run_cli("query", "--line", TWO)
    assert result.stdout == "a = 1\nb = 2\n\nc = x\n"


def test_a_statement_with_no_rows_still_lets_the_next_print():
    result = run_cli("query", "--json", "select 1 as a where 0; select 2 as b")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "[", '{"b":', "2}", "]"]


def test_a_csv_set_with_no_rows_keeps_its_header_apart_from_the_next_set():
    result = run_cli("query", "--csv", "select 1 as a where 0; select 'x' as c")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a\n\nc\nx\n"


def test_the_semicolon_in_a_string_does_not_split():
    result = run_cli("query", "--json", "select 'a;b' as s;")
    assert json.loads(result.stdout) == [{"s": "a;b"}]


def test_query_dash_reads_sql_from_stdin():
    result = run_cli("query", "--json", "-", input="select 41 + 1 as n;\nselect 'y' as c\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n]\n")[0] + "\n]" == '[\n  {"n": 42}\n]'


@pytest.mark.parametrize("sql", ["", "   ", "-- just a comment", "/* nothing */ ;;"])
def test_empty_or_comment_only_sql_is_a_usage_error(sql):
    result = run_cli("query", sql)
    assert result.returncode == 2
    assert result.stderr == "streamq: error: no SQL statement in the SQL argument (it is empty or only comments)\n"
    assert result.stdout == ""


def test_empty_stdin_is_a_usage_error():
    result = run_cli("query", "-", input="")
    assert result.returncode == 2
    assert "no SQL statement in stdin" in result.stderr


def test_follow_takes_one_statement():
    result = run_cli("query", "--follow", "--timeout", "1", TWO)
    assert result.returncode == 2
    assert "--follow and --repeat take one SQL statement" in result.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    result = run_cli(flag)
    assert result.returncode == 0
    assert result.stdout == f"streamq {streamq.__version__}\n"


def test_connect_to_a_path_that_is_not_a_socket_says_so(tmp_path):
    plain = tmp_path / "control.sock"
    plain.write_text("")
    result = run_cli("query", "--connect", str(plain), "select 1")
    assert result.returncode == 1
    assert result.stderr == (
        f"streamq: error: {plain} is not a socket: --connect takes the daemon's control socket ([control] path)\n"
    )


def test_tables_pattern_without_a_match_exits_1():
    result = run_cli("tables", "no_table_has_this_name")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "streamq: error: no table name contains 'no_table_has_this_name'\n"
    assert run_cli("tables", "process").returncode == 0


def test_an_empty_in_list_is_zero_rows_not_a_null_error():
    result = run_cli("query", "--json", "SELECT pid FROM processes WHERE pid IN (SELECT 1 WHERE 0)")
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")


def test_no_error_message_is_null_or_empty():
    # A failing SQL function with no message: the CLI still says something a person can read.
    result = run_cli("query", "select raise(abort, '')")
    assert result.returncode == 1
    assert "<NULL>" not in result.stderr
    assert result.stderr.startswith("streamq: error: ") and len(result.stderr.strip()) > len("streamq: error:")


def test_raw_non_utf8_bytes_in_the_sql_argument_work(tmp_path):
    name = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    with open(name, "wb") as f:
        f.write(b"real")
    sql = b"SELECT path, size FROM file WHERE path = '" + name + b"'"
    result = subprocess.run(
        [sys.executable, "-m", "streamq", "query", "--json", sql], capture_output=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"path": f"{tmp_path}/caf\\xe9.txt", "size": 4}]
    missing = os.fsencode(tmp_path) + b"/n\xe9.sock"
    result = subprocess.run(
        [sys.executable, "-m", "streamq", "query", "--connect", missing, "select 1"],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    assert b"/n\\xe9.sock: the socket does not exist" in result.stderr, result.stderr  # never \udce9


def test_raw_non_utf8_bytes_outside_quotes_are_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "streamq", "query", b"SELECT caf\xe9"], capture_output=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr == (
        b'streamq: error: unrecognized token: "\\": the SQL holds bytes that are not UTF-8, '
        b"read as \\xNN text, which only a quoted string may hold\n"
    )
    assert run_cli("query", "SELECT \\").stderr == 'streamq: error: unrecognized token: "\\"\n'  # typed: no hint
