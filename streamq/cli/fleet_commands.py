"""`streamq fleet query|hosts`: ask every daemon on a broker (docs/fleet.md)."""

from __future__ import annotations

import argparse
import os
import sys

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
