"""`streamq shell`: stdin scripts through the real CLI, the completer, and a session on a real pty."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import sys
import time

import pytest

from conftest import ROOT, compat_json, run_cli
from streamq.cli.completion import CompletionWords
from streamq.cli.shell import is_blank, split_statement


def shell(script: str, *args: str):
    return run_cli("shell", *args, input=script)


def ok(script: str, *args: str) -> str:
    result = shell(script, *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def json_docs(text: str) -> list:
    """Every JSON document printed one after the other (one per statement in json mode)."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


# Meta commands


def test_tables_lists_every_table():
    out = ok(".tables\n")
    names = re.findall(r"^  => (\w+)$", out, re.M)
    assert "processes" in names and "time" in names
    assert names == sorted(names)
    listed = run_cli("tables").stdout.split()  # the non-shell command is an independent listing
    assert names == listed


def test_tables_pattern_substring_and_glob():
    out = ok(".mode list\n.headers off\n.tables proc\nselect '--';\n.tables t*\n")
    proc, glob = (re.findall(r"=> (\w+)", part) for part in out.split("\n--\n"))
    assert "processes" in proc and "time" not in proc and all("proc" in n for n in proc)
    assert "time" in glob and "processes" not in glob and all(n.startswith("t") for n in glob)


def test_schema_of_one_table_matches_osquery_columns():
    out = ok(".schema time\n")
    create = [line for line in out.splitlines() if line.startswith("CREATE TABLE")]
    assert len(create) == 1 and create[0].startswith('CREATE TABLE "time" (')
    expected = [c["name"] for c in compat_json("osquery-linux-schema.json")["tables"]["time"]["columns"]]
    assert re.findall(r'"(\w+)" [A-Z]', create[0]) == expected


def test_schema_without_table_prints_every_create_statement():
    out = ok(".schema\n")
    tables = run_cli("tables").stdout.split()
    assert [re.match(r'CREATE TABLE "(\w+)"', line).group(1) for line in out.splitlines()] == tables


def test_schema_unknown_table_is_an_error():
    result = shell(".schema no_such_table\nselect 7 as n;\n")
    assert result.returncode == 1
    assert result.stderr == "Error: line 1: no such table: no_such_table\n"
    assert "7" in result.stdout


def test_mode_json_and_json_flag():
    assert json_docs(ok(".mode json\nselect 1 as a, 'x' as b;\n")) == [[{"a": 1, "b": "x"}]]
    assert json_docs(ok("select 1 as a, null as b;\n", "--json")) == [[{"a": 1, "b": None}]]
    assert json_docs(ok(".mode json\nselect 1 as a where 0;\n")) == [[]]


def test_mode_csv_headers_off_and_no_prompt_or_banner():
    script = (
        ".mode csv\nselect 1 as a, 'x,y' as b;\n.headers off\nselect 2 as a, 'z' as b;\n.headers on\nselect 3 as c;\n"
    )
    assert ok(script) == 'a,b\n1,"x,y"\n2,z\nc\n3\n'


def test_mode_line_and_list():
    assert ok(".mode line\nselect 1 as a, 'two' as bb;\n") == " a = 1\nbb = two\n"
    assert ok(".mode list\nselect 1 as a, 'two' as b;\n") == "a|b\n1|two\n"


def test_mode_without_argument_shows_it_and_bad_mode_is_an_error():
    assert ok(".mode\n") == "current output mode: pretty\n"
    result = shell(".mode html\n.headers maybe\n.timer\nselect 1 as a;\n")
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 3 and all(e.startswith("Error: line ") for e in errors)
    assert "| a |" in result.stdout  # still pretty, still running


def test_pretty_is_the_default():
    assert ok("select 1 as a;\n") == "+---+\n| a |\n+---+\n| 1 |\n+---+\n"


def test_timer_prints_run_time_after_each_statement():
    out = ok(".timer on\n.mode csv\nselect 1 as a;\nselect 2 as a;\n.timer off\nselect 3 as a;\n")
    times = re.findall(r"^Run Time: real (\d+\.\d{3})s user \d+\.\d{3}s sys \d+\.\d{3}s$", out, re.M)
    assert len(times) == 2
    assert out.splitlines()[-1] == "3"


def test_timer_measures_the_statement():
    # A recursive CTE that takes measurably long: the real time has to reflect it.
    sql = "with recursive c(x) as (select 1 union all select x+1 from c limit 300000) select count(*) as n from c;"
    out = ok(f".timer on\n.mode csv\n{sql}\n")
    assert float(re.search(r"real (\d+\.\d+)s", out).group(1)) > 0.01


def test_help_lists_the_meta_commands():
    out = ok(".help\n")
    for command in (".tables", ".schema", ".mode", ".headers", ".timer", ".help", ".quit", ".exit"):
        assert command in out


# Statements


def test_statement_spanning_lines():
    assert json_docs(ok(".mode json\nselect\n  1 + 1\n  as n\n;\n")) == [[{"n": 2}]]


def test_two_statements_on_one_line():
    assert ok(".mode csv\nselect 1 as a; select 2 as b;\n") == "a\n1\nb\n2\n"


def test_semicolons_inside_string_literals_and_comments():
    script = ".mode json\nselect 'x;y' as s, ';' as t;\nselect 'a;\nb;' as u /* c; */, \"q;\" as v from (select 1 as \"q;\");\n"
    assert json_docs(ok(script)) == [[{"s": "x;y", "t": ";"}], [{"u": "a;\nb;", "v": 1}]]


def test_trailing_comment_does_not_swallow_the_next_meta_command():
    out = ok(".mode csv\nselect 1 as a; -- done;\n.mode\n")
    assert out == "a\n1\ncurrent output mode: csv\n"


def test_trailing_statement_without_semicolon_runs_at_eof():
    assert ok(".mode csv\nselect 1 as a;\nselect 2 as b") == "a\n1\nb\n2\n"


def test_empty_input_and_lone_semicolons():
    assert ok("") == ""
    assert ok(";\n;;\n  \n-- nothing\n") == ""


def test_query_on_a_live_table():
    docs = json_docs(ok(".mode json\nselect pid from processes where pid = 1;\nselect unix_time from time;\n"))
    assert docs[0] == [{"pid": 1}]
    assert abs(docs[1][0]["unix_time"] - time.time()) < 60


def test_bad_sql_prints_one_line_continues_and_exits_1():
    result = shell(".mode csv\nselec 1;\nselect 2 as b;\nselect * from no_such_table;\nselect 3 as c;\n")
    assert result.returncode == 1
    assert result.stdout == "b\n2\nc\n3\n"
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("Error: line 2: ") and "syntax error" in errors[0]
    assert errors[1] == "Error: line 4: no such table: no_such_table"


def test_error_line_is_where_the_statement_starts():
    result = shell("select 1 as a;\nselect\n  nope\nfrom time;\n")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: line 2: ") and "nope" in result.stderr


def test_python_error_in_a_function_is_one_line_not_a_traceback():
    result = shell(".mode csv\nselect regex_match('a', '(', 0);\nselect 5 as n;\n")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: line 2: ")
    assert result.stdout == "n\n5\n"


def test_unknown_meta_command():
    result = shell(".frobnicate now\nselect 3 as c;\n")
    assert result.returncode == 1
    assert result.stderr == "Error: line 1: unknown command: .frobnicate (enter .help for the list)\n"
    assert "| 3 |" in result.stdout


@pytest.mark.parametrize("command", [".quit", ".exit"])
def test_quit_stops_reading(command):
    result = shell(f".mode csv\nselect 1 as a;\n{command}\nselect 2 as b;\nselec oops;\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a\n1\n"


def test_dot_inside_a_pending_statement_is_sql():
    # A line starting with "." while a statement is open belongs to that statement.
    assert json_docs(ok(".mode json\nselect\n.5 as half;\n")) == [[{"half": 0.5}]]


def test_output_to_a_closed_pipe_ends_quietly():
    import subprocess

    series = "with recursive c(value) as (select 1 union all select value + 1 from c limit 200000) select value from c;"
    script = f".mode csv\n{series}\n" * 3
    proc = subprocess.run(
        f"{sys.executable} -m streamq shell | head -n 2",
        shell=True,
        input=script,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.stdout == "value\n1\n"
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


# Pure helpers


def test_split_statement_uses_sqlite_completeness():
    assert split_statement("select 1; select 2;") == ("select 1;", " select 2;")
    assert split_statement("select ';'") == (None, "select ';'")
    assert split_statement("select ';';") == ("select ';';", "")
    assert split_statement("select 1 -- ;\n") == (None, "select 1 -- ;\n")
    assert is_blank(" ;\n-- x;\n/* y; */ ") and not is_blank("-- x\nselect 1")


def test_completer_words():
    words = CompletionWords()
    texts = lambda pending, before: [c[0] for c in words.complete(pending, before)]  # noqa: E731
    assert texts("", ".ta") == [".tables"]
    assert texts("", ".mode j") == ["json"]
    assert texts("", ".timer o") == ["on", "off"]
    assert "processes" in texts("", ".schema proc")
    assert texts("", "select * from processe") == ["processes"]
    after_from = texts("", "select * from proc")  # only tables fit after FROM and JOIN
    assert "processes" in after_from and after_from == [n for n in words.tables if n.startswith("proc")]
    assert "processes" in texts("", "select * from time join proc")
    # Keywords complete in the case typed (column names starting "sel", like self_signed, may come too).
    assert "select" in texts("", "sel") and "SELECT" in texts("", "SEL") and "select" not in texts("", "SEL")
    # Columns come from the tables the statement names, including lines typed before.
    assert "unix_time" in texts("select * from time where ", "un")
    assert "uid" not in texts("select * from time where ", "u")
    assert "uid" in texts("", "select u")
    # table.column and alias.column
    assert texts("", "select time.ye") == ["year"]
    assert texts("select * from time as t\n", "where t.ye") == ["year"]
    assert texts("", "select p.ui") == []  # an alias not defined (yet) completes nothing
    assert "regex_match" in texts("", "select regex_m")
    # The offset replaces exactly the word typed.
    assert words.complete("", "select * from processe")[0][1] == -8


# Interactive, on a real pseudo-terminal


class Pty:
    """`python -m streamq shell` on a pty; reads are bounded loops, the child is always reaped."""

    def __init__(self, home: str) -> None:
        env = dict(os.environ, HOME=home, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="120", LINES="40")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.chdir(ROOT)
                os.execve(sys.executable, [sys.executable, "-m", "streamq", "shell"], env)
            finally:
                os._exit(127)
        self.data = b""

    def read_until(self, token: bytes, timeout: float = 15.0, *, since: int = 0) -> bool:
        """Read until ``token`` appears in the output after offset ``since``; False on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while token not in self.data[since:] and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                self.data += chunk
        return token in self.data[since:]

    def prompt_after(self, token: bytes) -> bool:
        """Wait for ``token`` and then a fresh prompt: only then is the terminal in raw mode again."""
        if not self.read_until(token):
            return False
        return self.read_until(b"streamq>", since=self.data.rindex(token))

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 15.0) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_until(b"\x00never", 0.1)  # keep draining so the child never blocks on output
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
        return None

    def close(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def spawn():
    sessions = []

    def start(home: str) -> Pty:
        session = Pty(home)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


def test_interactive_session_writes_history(tmp_path, spawn):
    session = spawn(str(tmp_path))
    assert session.read_until(b"streamq>"), session.data
    session.send("select 1+1 as two;\r")
    assert session.prompt_after(b"| 2   |"), session.data
    session.send("select\r")
    assert session.read_until(b"...>"), session.data  # the continuation prompt
    session.send("  40 + 2 as answer;\r")
    assert session.prompt_after(b"| 42     |"), session.data
    session.send(".quit\r")
    assert session.wait() == 0
    history = (tmp_path / ".streamq_history").read_text()
    assert "+select 1+1 as two;" in history and "+.quit" in history


def test_interactive_without_a_writable_home(tmp_path, spawn):
    session = spawn(str(tmp_path / "missing"))  # a home that does not exist: history stays in memory
    assert session.read_until(b"streamq>"), session.data
    session.send("select 6*7 as n;\r")
    assert session.prompt_after(b"| 42 |"), session.data
    session.send("\x04")  # Ctrl-D at an empty prompt leaves
    assert session.wait() == 0
    assert b"Error" not in session.data and b"Traceback" not in session.data
    assert not (tmp_path / "missing").exists()


def test_interactive_tab_completes_a_table_name(tmp_path, spawn):
    session = spawn(str(tmp_path))
    assert session.read_until(b"streamq>"), session.data
    mark = len(session.data)
    session.send("select total_seconds from upt\t")
    assert session.read_until(b"ime", since=mark), session.data  # "upt" echoed, then "ime" completed
    session.send(";\r")
    assert session.prompt_after(b"| total_seconds |"), session.data
    assert b"no such table" not in session.data
    session.send(".exit\r")
    assert session.wait() == 0
