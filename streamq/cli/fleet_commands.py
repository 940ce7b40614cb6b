"""`streamq fleet query|hosts|push|status`: ask every daemon on a broker, send it config (docs/fleet.md).

push exits 0 when published (with ``--wait``: every awaited host reported the new
version and none refused it); 1 when a host refused it or did not report in time, or
the broker could not be reached; 2 on usage: a bad fragment, no key, no broker.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..config.sections import FleetOptions
from ..errors import ConfigError


def _config(args: argparse.Namespace):
    from ..config.loader import load

    return load(getattr(args, "config", None))


def cmd_fleet(args: argparse.Namespace) -> int:
    """Exit 0: every expected host answered; 1: an error reply, a host missing, or no broker; 2: usage."""
    import asyncio

    from ..daemon import fleet_client as fleet
    from . import output

    options = _config(args).fleet if args.config else None
    url = args.broker or (options.url if options else None)
    if not url:
        raise ConfigError("name the broker: --broker mqtt://host:port (or -c a config with a [fleet] url)")
    if args.fleet_command == "hosts":
        statuses = asyncio.run(fleet.hosts(url, timeout=args.timeout))
        output.write_rows(sys.stdout, args.mode, ["host", "status"], sorted(statuses.items()))
        return 0
    if args.fleet_command == "push":
        return cmd_push(args, url, options)
    if args.fleet_command == "status":
        return cmd_status(args, url)
    key = _fleet_key(args, options)
    result = asyncio.run(
        fleet.query(url, args.sql, hosts=args.host, timeout=args.timeout, key=key, max_rows=args.max_rows)
    )
    columns: list[str] = []
    for reply in result.replies.values():
        columns += [c for c in reply.columns if c not in columns]
    rows = []
    for host in sorted(result.replies):
        reply = result.replies[host]
        if reply.error is not None:
            print(f"streamq: {host}: error: {reply.error}", file=sys.stderr)
            continue
        if reply.truncated:
            print(f"streamq: {host}: warning: its row cap cut the result at {len(reply.rows)} rows", file=sys.stderr)
        at = [reply.columns.index(c) if c in reply.columns else None for c in columns]
        rows += [[host, *(row[i] if i is not None else None for i in at)] for row in reply.rows]
    if args.mode == "json" or any(r.error is None for r in result.replies.values()):
        output.write_rows(sys.stdout, args.mode, ["host", *columns], rows)
    for host in sorted(result.duplicates):
        print(f"streamq: {host}: warning: answered more than once (one host identifier, two daemons?)", file=sys.stderr)
    # Named hosts, and hosts online when asked, count in the exit code; a host already offline does not.
    for host in result.missing:
        status = result.statuses.get(host)
        if status == "offline":  # not waited for: it cannot answer
            print(f"streamq: {host}: no answer (status: offline)", file=sys.stderr)
        else:
            note = f" (status: {status})" if status else ""
            print(f"streamq: {host}: no answer within {args.timeout:g}s{note}", file=sys.stderr)
    if not args.host:
        for host in sorted(result.statuses.keys() - result.expected - result.replies.keys()):
            print(f"streamq: {host}: no answer (status: {result.statuses[host]})", file=sys.stderr)
    if not result.replies and not result.expected:
        print("streamq: no host is online to answer", file=sys.stderr)
        return 1
    return 0 if result.complete else 1


def _fleet_key(args: argparse.Namespace, options: FleetOptions | None) -> bytes | None:
    if args.key_file:
        try:
            with open(args.key_file, encoding="utf-8") as f:
                key = f.read().strip()
        except (OSError, UnicodeError) as err:
            raise ConfigError(f"--key-file: cannot read {args.key_file}: {err}") from None
        if not key:
            raise ConfigError(f"--key-file: {args.key_file} is empty")
        return key.encode()
    key = args.key or os.environ.get("STREAMQ_FLEET_KEY")
    return key.encode() if key else (options.key_bytes if options else None)


# -- config fragments: push and status ----------------------------------------------------------


def cmd_push(args: argparse.Namespace, url: str, options: Any) -> int:
    import asyncio

    from ..daemon import fleet_push
    from . import output

    toml = _fragment_text(args)
    key = _fleet_key(args, options)
    if key is None:
        raise ConfigError("fragments are signed: give --key-file F (or --key, $STREAMQ_FLEET_KEY, -c CONFIG)")
    result = asyncio.run(
        fleet_push.push(
            url,
            args.name,
            key=key,
            toml=toml,
            hosts=args.host,
            label=args.label,
            wait=args.wait,
            timeout=args.timeout,
        )
    )
    verb = "withdrawn" if toml is None else "pushed"
    print(f"streamq: {args.name} version {result.version} {verb}", file=sys.stderr)
    if not args.wait:
        return 0
    rows = [
        [host, e.get("state"), e.get("version"), e.get("applied"), e.get("reason")]
        for host, e in sorted(result.done.items())
    ]
    output.write_rows(sys.stdout, args.mode, ["host", "state", "version", "applied", "reason"], rows)
    for host, reason in result.refused.items():
        print(f"streamq: {host}: refused version {result.version}: {reason}", file=sys.stderr)
    for host in result.missing:
        status = result.view.statuses.get(host) or "unknown"
        said = "went offline" if status == "offline" else f"no report within {args.timeout:g}s (status: {status})"
        print(f"streamq: {host}: {said}", file=sys.stderr)
    if not result.awaited:
        print("streamq: no online host reports fleet config (accept_config)", file=sys.stderr)
    return 0 if result.complete else 1


def _fragment_text(args: argparse.Namespace) -> str | None:
    if args.delete:
        if args.file or args.host or args.label:
            raise ConfigError("--delete NAME withdraws a fragment everywhere: no FILE, --host or --label")
        return None
    if not args.file:
        raise ConfigError("give the fragment: streamq fleet push NAME FILE.toml (or --delete NAME)")
    try:
        if args.file == "-":
            return sys.stdin.read()
        with open(args.file, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeError) as err:
        raise ConfigError(f"cannot read {args.file}: {getattr(err, 'strerror', None) or err}") from None


def cmd_status(args: argparse.Namespace, url: str) -> int:
    import asyncio

    from ..daemon import fleet_push
    from . import output

    view = asyncio.run(fleet_push.status(url, timeout=args.timeout))
    output.write_rows(sys.stdout, args.mode, fleet_push.STATUS_COLUMNS, fleet_push.status_rows(view))
    return 0
