"""`streamq shell`: an osqueryi-style SQL shell, interactive on a terminal, a script reader otherwise.

Lines starting with ``.`` at the start of a statement are meta commands; everything
else is SQL, buffered until SQLite's own ``sqlite3_complete`` (``apsw.complete``)
says a statement ended, so a ``;`` inside a string literal or a trigger body does
not end it. Reading stdin, an error prints one line and the next statement runs;
the exit code is then 1, as sqlite3 and osqueryi do.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

import apsw

from ..errors import StreamqError
from . import output
from .shell_meta import MetaCommands

PROMPT = "streamq> "
CONTINUATION = "    ...> "

BANNER = "streamq: SQL over this host. Enter .help for meta commands; end statements with ';'.\n"

HELP = """\
.tables [PATTERN]   list tables; PATTERN is a substring, or a glob with * or ?
.schema [TABLE]     CREATE TABLE statements of all tables; with TABLE, its columns described
.all TABLE          SELECT * FROM TABLE
.mode [MODE]        show or set the output mode: pretty, column, line, csv, json, list
.headers on|off     show column names in the pretty, column, csv and list modes
.nullvalue STRING   how NULL prints (default: NULL in pretty, column and line; empty in csv and list)
.separator STRING   the list mode's column separator (default |)
.show               the current settings
.timer on|off       print the run time after each statement
.help               show this text
.quit, .exit        leave the shell
"""

_BOOLEANS = {"on": True, "yes": True, "true": True, "1": True, "off": False, "no": False, "false": False, "0": False}
# Whitespace and comments only: what may trail the last ";" without starting a statement.
_BLANK = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/)\s*)*", re.S)


def split_statement(buffer: str) -> tuple[str | None, str]:
    """The first complete statement of ``buffer`` and the rest, or (None, buffer) if none ended yet."""
    pos = buffer.find(";")
    while pos != -1:
        if apsw.complete(buffer[: pos + 1]):
            return buffer[: pos + 1], buffer[pos + 1 :]
        pos = buffer.find(";", pos + 1)
    return None, buffer


def is_blank(sql: str) -> bool:
    """True if ``sql`` holds nothing but whitespace, comments and semicolons."""
    return _BLANK.fullmatch(sql.replace(";", " ")) is not None


class Shell(MetaCommands):
    """The shell's state and commands; it reads nothing itself, lines are fed to it."""

    def __init__(self, conn, *, out: TextIO, err: TextIO, mode: str = "pretty", script: bool = False) -> None:
        self.conn = conn
        self.out, self.err = out, err
        self.mode, self.headers, self.timer = mode, True, False
        self.script = script  # reading stdin: errors name their line
        self.pending = ""  # SQL typed so far that has not ended with ";"
        self.pending_line = 0  # the line the pending statement started on
        self.lineno = 0
        self.errors = 0
        self.finished = False
        self.noted: set[str] = set()  # tables already named in a not-root note
        self.meta: dict[str, Callable[[list[str]], None]] = {
            ".tables": self.do_tables,
            ".schema": self.do_schema,
            ".mode": self.do_mode,
            ".headers": self.do_headers,
            ".header": self.do_headers,
            ".timer": self.do_timer,
            ".all": self.do_all,
            ".show": self.do_show,
            ".separator": self.do_separator,
            ".nullvalue": self.do_nullvalue,
            ".help": self.do_help,
            ".quit": self.do_quit,
            ".exit": self.do_quit,
        }

    @property
    def prompt(self) -> str:
        return CONTINUATION if self.pending else PROMPT

    def feed(self, line: str) -> None:
        """Take one input line: a meta command, or SQL that runs once a statement is complete."""
        self.lineno += 1
        if not self.pending:
            if line.lstrip().startswith("."):
                self.run_meta(line.strip())
                return
            self.pending_line = self.lineno
        self.pending += line + "\n"
        while not self.finished:
            statement, rest = split_statement(self.pending)
            if statement is None:
                break
            self.pending = rest
            start = self.pending_line
            self.pending_line += statement.count("\n")
            self.run_sql(statement, start)
        if is_blank(self.pending):
            self.pending = ""

    def finish(self) -> None:
        """End of input: a last statement without ";" still runs."""
        if self.pending and not self.finished and not is_blank(self.pending):
            self.run_sql(self.pending, self.pending_line)
        self.pending = ""

    def reset(self) -> None:
        self.pending = ""

    def error(self, message: str, line: int | None = None) -> None:
        self.errors += 1
        self.out.flush()  # keep stdout and stderr in order when both go to one place
        where = f"line {line}: " if self.script and line else ""
        self.err.write(f"Error: {where}{' '.join(message.split())}\n")
        self.err.flush()

    # SQL

    def run_sql(self, sql: str, line: int) -> None:
        if is_blank(sql):
            return
        started, times = time.perf_counter(), os.times()
        try:
            self._note_incomplete(sql)
            names, rows = self.conn.execute(sql)
            if names or self.mode == "json":  # json prints [] for no rows, as `streamq query --json` does
                output.write_rows(
                    self.out,
                    self.mode,
                    names,
                    rows,
                    headers=self.headers,
                    null=self.null_text(),
                    separator=self.separator,
                )
            else:
                for _ in rows:  # a statement without result columns still has to run to its end
                    pass
        except BrokenPipeError:
            raise  # the reader of stdout left; the CLI ends quietly
        except StreamqError as err:
            self.error(str(err), line)
        except Exception as err:  # a failing table generator: one line, never a traceback
            if os.environ.get("STREAMQ_DEBUG"):
                raise
            self.error(f"{type(err).__name__}: {err}", line)
        if self.timer:
            self.out.write(_run_time(started, times))
        self.out.flush()

    def _note_incomplete(self, sql: str) -> None:
        """Not root, on a local connection: a note the first time a table with incomplete rows is read."""
        if os.geteuid() == 0 or not hasattr(self.conn, "tables_read"):
            return  # a daemon (streamq.Client) reads with its own rights
        from .notes import incomplete_tables

        tables = self.conn.tables_read(sql) - self.noted
        self.noted |= tables
        note = incomplete_tables(tables)
        if note:
            self.out.flush()
            self.err.write(note + "\n")
            self.err.flush()

    # Meta commands

    def run_meta(self, line: str) -> None:
        try:
            command, *args = shlex.split(line)  # .separator ", " and .nullvalue "" take quotes, as in sqlite3
        except ValueError:
            command, *args = line.split()
        handler = self.meta.get(command.lower())
        if handler is None:
            self.error(f"unknown command: {command} (enter .help for the list)", self.lineno)
            return
        handler(args)

    def do_tables(self, args: list[str]) -> None:
        if len(args) > 1:
            return self.error("usage: .tables [PATTERN]", self.lineno)
        for name in _match_tables(self.conn.tables(), args[0] if args else None):
            self.out.write(f"  => {name}\n")

    def do_schema(self, args: list[str]) -> None:
        from ..sql.connection import load_tables
        from .docs import schema_text

        registry = load_tables()
        if not args:
            for name in sorted(registry):
                self.out.write(registry[name].create_sql() + ";\n")
            return
        for name in args:
            spec = registry.get(name)
            if spec is None:
                self.error(f"no such table: {name}", self.lineno)
            else:
                self.out.write(schema_text(spec))

    def do_mode(self, args: list[str]) -> None:
        if not args:
            self.out.write(f"current output mode: {self.mode}\n")
        elif len(args) == 1 and args[0].lower() in output.MODES:
            self.mode = args[0].lower()
        else:
            self.error(f"usage: .mode {'|'.join(output.MODES)}", self.lineno)

    def do_headers(self, args: list[str]) -> None:
        value = self._switch(".headers", args)
        if value is not None:
            self.headers = value

    def do_timer(self, args: list[str]) -> None:
        value = self._switch(".timer", args)
        if value is not None:
            self.timer = value

    def do_help(self, args: list[str]) -> None:
        self.out.write(HELP)

    def do_quit(self, args: list[str]) -> None:
        self.finished = True

    def _switch(self, command: str, args: list[str]) -> bool | None:
        value = _BOOLEANS.get(args[0].lower()) if len(args) == 1 else None
        if value is None:
            self.error(f"usage: {command} on|off", self.lineno)
        return value


def _match_tables(names: list[str], pattern: str | None) -> list[str]:
    if not pattern:
        return names
    if any(ch in pattern for ch in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return [n for n in names if pattern in n]


def _run_time(started: float, times: os.times_result) -> str:
    now = os.times()
    real = time.perf_counter() - started
    user, system = now.user - times.user, now.system - times.system
    return f"Run Time: real {real:.3f}s user {user:.3f}s sys {system:.3f}s\n"


def run_shell(*, mode: str = "pretty", conn=None) -> int:
    """Run the shell on stdin; return the exit code (1 if a statement read from stdin failed).

    ``conn`` runs the statements: anything with ``execute(sql) -> (names, rows)`` and
    ``tables()``, such as a streamq.Client on a daemon; by default a new local connection.
    """
    if conn is None:
        from ..sql.connection import connect

        conn = connect()
    if sys.stdin.isatty():
        return _interactive(Shell(conn, out=sys.stdout, err=sys.stderr, mode=mode))
    shell = Shell(conn, out=sys.stdout, err=sys.stderr, mode=mode, script=True)
    for line in _stdin_lines():
        shell.feed(line)
        if shell.finished:
            break
    shell.finish()
    return 1 if shell.errors else 0


def _stdin_lines() -> Iterator[str]:
    from ..text import decode

    # Bytes, decoded by the project's rule: a non-UTF-8 path in a script becomes \xNN,
    # which the file tables turn back into the same bytes.
    for raw in sys.stdin.buffer:
        yield decode(raw).rstrip("\r\n")


# Interactive mode: prompt_toolkit is imported only here, it costs ~100 ms.


def _interactive(shell: Shell) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.output import create_output

    from .completion import completer, history

    lexer = None
    try:
        from prompt_toolkit.lexers import PygmentsLexer
        from pygments.lexers.sql import SqlLexer

        lexer = PygmentsLexer(SqlLexer)
    except ImportError:  # colours are a nicety; pygments is not a dependency
        pass
    session = PromptSession(
        history=history(),
        completer=completer(shell),
        complete_while_typing=False,
        lexer=lexer,
        # With stdout redirected, the prompt goes to the terminal on stderr and the file gets only rows.
        output=create_output(always_prefer_tty=True),
    )
    shell.out.write(BANNER)
    while not shell.finished:
        try:
            line = session.prompt(shell.prompt)
        except KeyboardInterrupt:  # Ctrl-C at the prompt drops the statement being typed
            shell.reset()
            continue
        except EOFError:
            break
        try:
            shell.feed(line)
        except KeyboardInterrupt:
            shell.reset()
            shell.out.flush()
            shell.err.write("Interrupted\n")
    shell.finish()
    return 0
