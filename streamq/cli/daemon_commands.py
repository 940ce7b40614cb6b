"""`streamq run` (the daemon, and `--check`) and `streamq serve` (the web console for a running daemon)."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from ..text import visible
from .messages import error as _error


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from ..config.sections import MetricsOptions
    from ..daemon.app import Daemon
    from ..daemon.configuration import default_config_text, load_config
    from ..daemon.systemd import configure_logging

    if args.print_config:
        sys.stdout.write(default_config_text())
        return 0
    config = load_config(args.config)
    if args.web is not None:
        config = config.replace(web=_web_options(config, args.web))
    if args.metrics is not None:
        config = config.replace(metrics=MetricsOptions.from_flag(args.metrics))
    if args.check:
        return _check(config)
    configure_logging(args.log_level)  # journald's form under systemd

    async def main() -> int:
        return await Daemon(config).run()

    return asyncio.run(main())


def _check(config) -> int:
    """`run --check`: the checks `run` makes at start (streamq.daemon.check), without starting."""
    from ..daemon.check import check

    report = check(config)
    for warning in report.warnings:
        print(f"streamq: warning: {visible(warning)}", file=sys.stderr)
    for name, why in report.skipped.items():
        print(f"streamq: warning: pack query {name} skipped: {visible(why)}", file=sys.stderr)
    for error in report.errors:
        _error(error)
    if report.errors:
        return 2
    queries, sinks = len(config.queries) - len(report.skipped), len(config.sinks)
    print(f"{config.path}: ok ({queries} {'query' if queries == 1 else 'queries'}, {sinks} sink{'s' * (sinks != 1)})")
    return 0


def _web_options(config, listen: str):
    """``--web HOST:PORT`` over the config's [web] section, checked as the config file would be."""
    import dataclasses

    from ..config.sections import parse_listen, web_problem

    try:
        parse_listen(listen)
    except ValueError as err:
        raise ConfigError(f"--web: {err}") from None
    web = dataclasses.replace(config.web, listen=listen)
    problem = web_problem(web)
    if problem is not None:
        raise ConfigError(f"--web: {problem[1]}")
    return web


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ..client import default_path
    from ..config.loader import load
    from ..web.server import serve

    config = load(args.config)
    web = _web_options(config, args.web or config.web.listen or "127.0.0.1:8765")
    logging.basicConfig(level=logging.INFO, format="streamq: %(message)s", stream=sys.stderr)
    return asyncio.run(serve(web, args.connect or default_path(), fleet=config.fleet))
