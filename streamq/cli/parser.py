"""The command line's grammar: every subcommand, option and help text of ``streamq``."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="streamq",
        description=f"streamq {__version__}: SQL over the live Linux host, with osquery's tables.",
        epilog=EXAMPLES[()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"streamq {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", metavar="FILE", help="TOML configuration file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    q = sub.add_parser("query", parents=[common], help="run SQL and print the rows (one result set per statement)")
    fmt = q.add_mutually_exclusive_group()
    for mode in ("json", "csv", "line"):
        fmt.add_argument(f"--{mode}", dest="mode", action="store_const", const=mode, help=f"print rows as {mode}")
    q.set_defaults(mode="pretty")
    q.add_argument("--follow", action="store_true", help="run the query on each new event and print new rows")
    q.add_argument("--count", type=_positive_int, metavar="N", help="with --follow: stop after N rows")
    q.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="with --follow: stop after this long")
    q.add_argument(
        "--repeat", type=_positive_int, metavar="N", help="run the query N times; report median and p95 time, rows"
    )
    q.add_argument(
        "--leak-check",
        action="store_true",
        help="with --repeat: also report memory growth per run; exit 1 past the bounds (docs/writing-tables.md)",
    )
    q.add_argument("--connect", metavar="PATH", help="run on the daemon listening on this control socket")
    add_stream_options(q, follow=True)
    q.add_argument(
        "sql", metavar="SQL", help="one or more statements, each printed as its own result set; - reads stdin"
    )

    t = sub.add_parser("tables", parents=[common], help="list the tables")
    t.add_argument("--markdown", action="store_true", help="print the table reference as Markdown")
    t.add_argument("pattern", nargs="?", help="only tables whose name contains this")

    s = sub.add_parser("schema", parents=[common], help="show a table's columns")
    s.add_argument("table", metavar="TABLE")

    tl = sub.add_parser(
        "tail",
        help="print JSON records from a file, stdin or an MQTT topic as they arrive, optionally through SQL",
        description=TAIL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tl.add_argument("source", metavar="SOURCE", help="a file, - for stdin, or mqtt://host:port/topic/filter")
    tl.add_argument("--sql", metavar="SQL", help="filter and project the records, e.g. SELECT user FROM stream")
    tl.add_argument("--count", type=_positive_int, metavar="N", help="stop after N output lines")
    tl.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="stop after this long")
    tl.add_argument("--from-end", action="store_true", help="a file: skip what it holds now, print only new lines")
    tl.add_argument(
        "--time", metavar="FIELD", help="the record field holding its event time (unix seconds or RFC 3339)"
    )
    add_stream_options(tl)

    r = sub.add_parser(
        "run", parents=[common], help="run the daemon: continuous queries to sinks (embedded default without -c)"
    )
    r.add_argument("--print-config", action="store_true", help="print the embedded default config and exit")
    r.add_argument("--check", action="store_true", help="validate the config and exit")
    r.add_argument("--web", metavar="HOST:PORT", help="also serve the web console here (like [web] listen)")
    r.add_argument("--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics here, e.g. 127.0.0.1:9464")
    r.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info", help="log this and worse"
    )

    sv = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the web console for a daemon running on this host (docs/web.md)",
    )
    sv.add_argument("--connect", metavar="SOCKET", help="the daemon's control socket (default: the usual path)")
    sv.add_argument("--web", metavar="HOST:PORT", help="listen here (default: [web] listen, else 127.0.0.1:8765)")

    sh = sub.add_parser("shell", parents=[common], help="interactive SQL shell (reads stdin when it is not a terminal)")
    sh.add_argument("--json", dest="mode", action="store_const", const="json", default="pretty")
    sh.add_argument("--connect", metavar="PATH", help="run statements on the daemon listening on this control socket")

    fl = sub.add_parser("fleet", help="ask every daemon on an MQTT broker (docs/fleet.md)")
    fleet_sub = fl.add_subparsers(dest="fleet_command", metavar="ACTION")
    fleet_sub.required = True
    fq = fleet_sub.add_parser(
        "query",
        parents=[common],
        help="run read-only SQL on every daemon (or the --host ones), rows with a host column",
    )
    fq.add_argument("--host", action="append", metavar="H", help="ask only this host (repeat for several)")
    fq.add_argument("--max-rows", type=_positive_int, metavar="N", help="ask each host for at most N rows")
    fq.add_argument("sql", metavar="SQL")
    fh = fleet_sub.add_parser("hosts", parents=[common], help="list the hosts the broker's status topics know")
    fp = _fleet_push_parser(fleet_sub, common)
    fs = fleet_sub.add_parser(
        "status", parents=[common], help="per host: config fragments applied, refused or pending, and when last seen"
    )
    for p in (fq, fh, fp, fs):
        p.add_argument("--broker", metavar="URL", help="mqtt[s]://[user:password@]host:port (default: [fleet] url)")
        p.add_argument("--timeout", type=_positive_float, default=5.0, metavar="S", help="wait this long (default 5)")
        p.add_argument("--json", dest="mode", action="store_const", const="json", default="pretty")
    for p in (fq, fp):
        keys = p.add_mutually_exclusive_group()
        keys.add_argument("--key", metavar="K", help="shared key (default: $STREAMQ_FLEET_KEY, else [fleet] key)")
        keys.add_argument("--key-file", metavar="F", help="read the shared key from this file")

    co = sub.add_parser("completion", help="print a bash or zsh completion script for streamq")
    co.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    _add_examples(parser)
    return parser


def _add_examples(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Every subcommand's --help ends with its examples (EXAMPLES)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                child.epilog = EXAMPLES[(*path, name)]
                child.formatter_class = argparse.RawDescriptionHelpFormatter
                _add_examples(child, (*path, name))


EXAMPLES = {
    (): """examples:
  streamq query "SELECT pid, name FROM processes WHERE name = 'sshd'"
  streamq shell
  streamq run -c /etc/streamq/streamq.toml
  streamq COMMAND --help          (each command's options and examples)""",
    ("query",): """examples:
  streamq query "SELECT pid, name, cmdline FROM processes WHERE pid = 1"
  streamq query --json "SELECT * FROM listening_ports WHERE port = 22"
  streamq query --follow --count 5 "SELECT pid, path FROM process_events WHERE action = 'exec'"
  streamq query --connect /run/streamq/control.sock "SELECT name, sent, queued FROM streamq_sinks\"""",
    ("tables",): """examples:
  streamq tables
  streamq tables docker           (names containing docker)""",
    ("schema",): """example:
  streamq schema listening_ports""",
    ("tail",): """example:
  tail -f app.log | streamq tail - --time ts --window "tumble 1m" \\
      --sql "SELECT status, count(*) AS n FROM stream GROUP BY status\"""",
    ("run",): """examples:
  streamq run                                      (the embedded default config)
  streamq run -c /etc/streamq/streamq.toml --check
  streamq run -c /etc/streamq/streamq.toml --metrics 127.0.0.1:9464 --log-level warning""",
    ("serve",): """example:
  streamq serve --web 127.0.0.1:8765""",
    ("shell",): """examples:
  streamq shell
  echo "SELECT name FROM users;" | streamq shell
  streamq shell --connect /run/streamq/control.sock""",
    ("fleet",): """examples:
  streamq fleet hosts --broker mqtt://broker:1883
  streamq fleet query --broker mqtt://broker:1883 --key-file fleet.key "SELECT * FROM listening_ports"
  streamq fleet push --broker mqtt://broker:1883 --key-file fleet.key web-ports web-ports.toml --wait
  streamq fleet status --broker mqtt://broker:1883""",
    ("fleet", "query"): """example:
  streamq fleet query --broker mqtt://broker:1883 --key-file fleet.key --host web-1 "SELECT version FROM os_version\"""",
    ("fleet", "hosts"): """example:
  streamq fleet hosts --broker mqtts://user:secret@broker:8883 --json""",
    ("fleet", "push"): """examples:
  streamq fleet push --broker mqtt://broker:1883 --key-file fleet.key web-ports web-ports.toml --label web --wait
  streamq fleet push --broker mqtt://broker:1883 --key-file fleet.key web-ports --delete""",
    ("fleet", "status"): """example:
  streamq fleet status --broker mqtt://broker:1883""",
    ("completion",): """examples:
  eval "$(streamq completion bash)"             (in ~/.bashrc)
  streamq completion zsh > ~/.zfunc/_streamq    (with fpath+=~/.zfunc before compinit in ~/.zshrc)""",
}


def _fleet_push_parser(fleet_sub, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    fp = fleet_sub.add_parser(
        "push",
        parents=[common],
        help="send the fleet's daemons a signed config fragment (queries, packs, decorators, labels)",
        description=PUSH_HELP,
    )
    fp.add_argument("name", metavar="NAME", help="the fragment's name; its queries run as NAME/QUERY")
    fp.add_argument("file", nargs="?", metavar="FILE.toml", help="the fragment (- for stdin)")
    fp.add_argument("--delete", action="store_true", help="withdraw fragment NAME from every host")
    fp.add_argument("--host", action="append", metavar="H", help="only this host (repeat for several)")
    fp.add_argument("--label", metavar="LABEL", help="only hosts where [labels.LABEL] returns rows")
    fp.add_argument("--wait", action="store_true", help="return once every online host reported the new version")
    return fp


PUSH_HELP = """\
Publish a signed, versioned config fragment as a retained MQTT message on
streamq/fleet/config/NAME. Daemons with [fleet] accept_config = true verify it,
check it as `run --check` would, and run its queries as NAME/QUERY; a new version
replaces the old one, and unchanged queries keep their state. A fragment holds
[queries.*], [packs.NAME] (inline osquery packs), [decorators] and [labels.*], and
nothing that could send data elsewhere (no sinks, sources or keys).
"""


TAIL_HELP = """\
Print JSON records (one JSON object per line) as they arrive, one JSON line per
record, flushed at once. A file is read from its start, then followed across
rotation and truncation (like tail -n +1 -F; --from-end: like tail -n 0 -F);
- reads stdin until it ends; mqtt://host:port/topic/# subscribes (mqtts:// for TLS).

With --sql, records are rows of the table `stream`: the keys of the first record
and every column the SQL names, untyped, plus `raw` (the record's JSON; other
keys: json_extract(raw, '$.key')); MQTT adds `topic`. Without --window the SQL
may only filter and project (its result must not depend on how records were
batched); aggregates need a window, over which they run exactly once, on the
rows whose time lies in [window_start, window_end). --time names the field with
each record's event time, which is then the column `time` in unix seconds
(else the arrival time counts). At the end of input (EOF, --count, --timeout,
Ctrl-C) open windows are emitted. Malformed, late and time-less records are
counted on stderr at the end (docs/streaming.md).

  streamq tail /var/log/app.jsonl --sql "SELECT user FROM stream WHERE status >= 500"
  streamq tail - --time ts --window "tumble 1m" --sql "SELECT status, count(*) AS n FROM stream GROUP BY status"
"""


def add_stream_options(p: argparse.ArgumentParser, *, follow: bool = False) -> None:
    """Windows, emit modes, first-seen and rate limits (docs/streaming.md); checked by stream.spec."""
    with_follow = "with --follow: " if follow else ""
    p.add_argument(
        "--window",
        metavar="W",
        help=f'{with_follow}run the SQL once per window: "tumble 1m", "hop 10m every 1m", "session 30s"',
    )
    p.add_argument("--window-key", metavar="COLS", help="a session window per value of these columns, e.g. user")
    p.add_argument("--emit", choices=("close", "changes"), help="close (default): each window once; changes: updates")
    p.add_argument("--grace", metavar="D", help="wait this long for late records before a window closes (e.g. 5s)")
    p.add_argument("--dedup", metavar="COLS", help="emit a row only the first time these columns' values are seen")
    p.add_argument("--dedup-for", metavar="D", help="with --dedup: forget a key after this long (default: never)")
    p.add_argument("--limit", metavar="N/D", help="at most N rows per period D (e.g. 10/1m); one line counts the rest")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value
