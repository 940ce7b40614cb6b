"""The `streamq` command: parse, dispatch, and turn every error into one line and an exit code.

cli/ is the only package that prints to the user or picks exit codes; the daemon's
and the fleet's subcommands live in daemon_commands.py and fleet_commands.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import ConfigError, QueryError, StreamqError
from ..text import visible
from .messages import error as _error
from .parser import build_parser


def _config(args: argparse.Namespace):
    """The -c config, or None without one (and no loader import: a one-off query starts fast)."""
    path = getattr(args, "config", None)
    if path is None:
        return None
    from ..config.loader import load
    from ..daemon.configuration import configure_tables

    config = load(path)
    configure_tables(config)  # [docker] socket, [prometheus_targets], [yara] signatures, as `run` hands them on
    return config


def cmd_query(args: argparse.Namespace) -> int:
    try:
        return _query(args)
    except QueryError as err:
        if getattr(args, "raw_bytes", False) and str(err).startswith('unrecognized token: "\\'):
            raise QueryError(f"{err}: {RAW_BYTES_HINT}") from None
        raise


# SQL given as raw bytes that are not UTF-8 has them as \xNN text (see _statements):
# inside quotes that is the file name a table prints; outside, SQLite sees a stray "\".
RAW_BYTES_HINT = "the SQL holds bytes that are not UTF-8, read as \\xNN text, which only a quoted string may hold"


def _query(args: argparse.Namespace) -> int:
    statements = _statements(args)
    if len(statements) > 1 and (args.follow or args.repeat):
        raise ConfigError("--follow and --repeat take one SQL statement")
    if args.connect is not None:
        return _query_daemon(args, statements)
    config = _config(args)
    if args.leak_check and not args.repeat:
        raise ConfigError("--leak-check goes with --repeat N")
    if args.repeat and (args.follow or args.mode not in ("pretty", "json")):
        raise ConfigError("--repeat prints a report: it does not go with --follow, --csv or --line")
    args.sql = statements[0]
    if args.follow:
        return _follow(args, config)
    if args.count or args.timeout:
        raise ConfigError("--count and --timeout go with --follow")
    from ..stream.spec import FOLLOW_OPTIONS, flag

    given = [flag(name) for name in FOLLOW_OPTIONS if getattr(args, name) is not None]
    if given:
        verb = "goes" if len(given) == 1 else "go"
        raise ConfigError(f"{', '.join(given)} {verb} with --follow (a query over events as they come)")
    from ..sql.connection import connect

    if config is not None and config.sources:
        from ..sources.manager import declare_stream_tables

        declare_stream_tables(config.sources)  # so configured jsonl/mqtt tables exist (empty) for a one-off query
    conn = connect()
    if args.repeat:
        return _repeat(args, conn)
    _note_incomplete(conn, statements)
    _write_results(args.mode, (conn.execute(sql) for sql in statements))
    return 0


def _note_incomplete(conn, statements: list[str]) -> None:
    """Not root: one note naming the tables read whose rows are incomplete (streamq.cli.notes)."""
    if os.geteuid() == 0:
        return
    from .notes import print_incomplete

    tables: set[str] = set()
    for sql in statements:
        try:
            tables |= conn.tables_read(sql)
        except StreamqError:
            pass  # the statement fails when run, with its own message
    print_incomplete(tables)


def _statements(args: argparse.Namespace) -> list[str]:
    """The SQL statements to run, from the argument or (``-``) stdin; none at all is a usage error."""
    from ..sql.statements import split

    text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape") if args.sql == "-" else args.sql
    # Raw non-UTF-8 bytes (a file name pasted from a shell) arrive as surrogate escapes, which
    # SQLite cannot take; as \xNN they are the very text the tables print for those bytes.
    args.raw_bytes = visible(text) != text
    statements = split(visible(text))
    if not statements:
        where = "stdin" if args.sql == "-" else "the SQL argument"
        raise ConfigError(f"no SQL statement in {where} (it is empty or only comments)")
    return statements


def _write_results(mode: str, results) -> None:
    """Each statement's result as its own result set, as osqueryi does (docs: README "Output")."""
    from . import output

    written = False
    for names, rows in results:
        if written and mode in ("csv", "line"):
            sys.stdout.write("\n")  # a blank line between result sets
        count = output.write_rows(sys.stdout, mode, names, rows)
        # json and csv print something (an array, a header) even for no rows; line prints nothing.
        written = written or count > 0 or mode == "json" or (mode == "csv" and bool(names))
        sys.stdout.flush()


def _query_daemon(args: argparse.Namespace, statements: list[str]) -> int:
    from ..client import Client

    if args.follow or args.count or args.timeout or args.repeat or args.leak_check:
        raise ConfigError("--follow, --count, --timeout, --repeat and --leak-check run here, not with --connect")
    with Client(args.connect, on_truncated=_warn_truncated) as client:
        # The daemon takes one statement per request: send them one by one, print as they come.
        _write_results(args.mode, (client.execute(sql) for sql in statements))
    return 0


def _warn_truncated(reply) -> None:
    print(f"streamq: warning: the daemon's row cap cut the result at {len(reply.rows)} rows", file=sys.stderr)


def _repeat(args: argparse.Namespace, conn) -> int:
    import json

    from . import leakcheck

    if args.leak_check and args.repeat < leakcheck.min_runs():
        raise ConfigError(f"--leak-check needs --repeat {leakcheck.min_runs()} or more (a warm-up, then a fit)")
    report = leakcheck.repeat_query(conn, args.sql, args.repeat, leak_check=args.leak_check)
    if args.mode == "json":
        sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    else:
        sys.stdout.write(report.text())
    if report.leaking:
        _error(report.growth.verdict())
        return 1
    return 0


def _follow(args: argparse.Namespace, config) -> int:
    import asyncio
    import logging
    import signal

    # A source that fails and restarts says so on stderr; rows go to stdout.
    logging.basicConfig(level=logging.WARNING, format="streamq: warning: %(message)s", stream=sys.stderr)

    from .follow import Follower
    from .notes import watch_fallbacks
    from .output import StreamPrinter

    if config is None:
        from ..config.sections import Config

        config = Config()
    printer = StreamPrinter(sys.stdout, args.mode)
    options = stream_options(args)
    if os.geteuid() != 0:
        from ..daemon.checks import learn_columns, naming
        from ..sources.manager import declare_stream_tables
        from ..sql.connection import connect

        learned = learn_columns(config, naming(config, args.sql, options.window_key))  # as Follower.open does
        declare_stream_tables(config.sources, learned)
        with connect() as conn:
            _note_incomplete(conn, [args.sql])

    async def run() -> int:
        # SIGTERM ends --follow as Ctrl-C does, so sources put back what they changed
        # (the audit source's registration with the kernel).
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        follower = Follower(config)
        notes = asyncio.create_task(watch_fallbacks(follower.rings))
        try:
            await follower.open(args.sql, options.window_key)
            await follower.follow(args.sql, printer, count=args.count, timeout=args.timeout, options=options)
        finally:
            notes.cancel()
            await follower.close()
        return 0

    try:
        return asyncio.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0  # Ctrl-C (or SIGTERM) is how a user ends --follow


def stream_options(args: argparse.Namespace):
    """The streaming flags as a StreamSpec; a wrong one is a usage error (exit 2)."""
    from ..stream.spec import FOLLOW_OPTIONS, follow_spec

    try:
        return follow_spec({name: getattr(args, name) for name in FOLLOW_OPTIONS})
    except ValueError as err:
        raise ConfigError(str(err)) from None


def cmd_tail(args: argparse.Namespace) -> int:
    import asyncio

    from .tail import tail

    options = stream_options(args)

    out = sys.stdout.buffer

    def emit(lines: list[bytes]) -> None:
        out.write(b"\n".join(lines) + b"\n")
        out.flush()

    run = tail(
        args.source,
        emit,
        sql=args.sql,
        count=args.count,
        timeout=args.timeout,
        from_start=not args.from_end,
        time_field=args.time,
        options=options,
    )
    try:
        result = asyncio.run(run)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a user ends a tail
    for note in result.notes(args.time):
        print(f"streamq: {note}", file=sys.stderr)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from ..sql.connection import load_tables

    if args.markdown:
        from .docs import tables_markdown

        sys.stdout.write(tables_markdown())
        return 0
    names = [name for name in sorted(load_tables()) if not args.pattern or args.pattern in name]
    for name in names:
        print(name)
    if not names:
        _error(f"no table name contains {args.pattern!r}")
        return 1
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ..sql.connection import load_tables
    from .docs import schema_text

    spec = load_tables().get(args.table)
    if spec is None:
        raise StreamqError(f"no such table: {args.table}")
    sys.stdout.write(schema_text(spec))
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    from .shell import run_shell

    _config(args)
    if args.connect is not None:
        from ..client import Client

        with Client(args.connect, on_truncated=_warn_truncated) as client:
            return run_shell(mode=args.mode, conn=client.connect())
    return run_shell(mode=args.mode)


def _elsewhere(target: str):
    """A subcommand defined in another cli module, imported only when it runs (cold start)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module, __package__), name)(args)

    return run


cmd_run = _elsewhere(".daemon_commands:cmd_run")
cmd_serve = _elsewhere(".daemon_commands:cmd_serve")
cmd_fleet = _elsewhere(".fleet_commands:cmd_fleet")


def cmd_completion(args: argparse.Namespace) -> int:
    from . import completion_scripts

    sys.stdout.write(getattr(completion_scripts, args.shell)(build_parser()))
    return 0


COMMANDS = {
    "run": cmd_run,
    "query": cmd_query,
    "tables": cmd_tables,
    "schema": cmd_schema,
    "shell": cmd_shell,
    "tail": cmd_tail,
    "fleet": cmd_fleet,
    "serve": cmd_serve,
    "completion": cmd_completion,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except StreamqError as err:
        _error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `streamq query ... | head`: the reader left; that is not our error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # a bug or an OS failure: one line, never a traceback
        if os.environ.get("STREAMQ_DEBUG"):
            raise
        _error(f"{type(err).__name__}: {err}")
        return 1
    finally:
        _plugin_warnings()


def _plugin_warnings() -> None:
    db = sys.modules.get("streamq.sql.connection")
    for message in getattr(db, "PLUGIN_ERRORS", ()):
        print(f"streamq: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
