"""osquery's decorators: columns from [decorators] SQL added to every result line.

``load`` queries run when the daemon starts and again when they change (a SIGHUP, a
fleet fragment); ``always`` queries run with every query run. Each decorator adds the
columns of its first row; one that fails is logged and adds nothing. Everything here
runs on the daemon's SQL thread.
"""

from __future__ import annotations

import logging
from typing import Any

from ..config.sections import DecoratorOptions

log = logging.getLogger("streamq.daemon.decorators")


class Decorations:
    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}  # what the load queries gave

    def load(self, conn: Any, options: DecoratorOptions) -> None:
        self.loaded = run_decorators(conn, options.load)

    def current(self, conn: Any, options: DecoratorOptions) -> dict[str, Any]:
        """The decorations of one query run: the loaded ones, then the always ones run now."""
        out = dict(self.loaded)
        if options.always:
            out.update(run_decorators(conn, options.always))
        return out


def run_decorators(conn: Any, sqls: list[str]) -> dict[str, Any]:
    decorated: dict[str, Any] = {}
    for sql in sqls:
        try:
            rows = conn.query(sql)
        except Exception as err:
            log.warning("decorator %r failed: %s", sql, err)
            continue
        if rows:
            decorated.update(rows[0])
    return decorated
