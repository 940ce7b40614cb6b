"""The shell's osqueryi meta commands beyond the basics: .all, .show, .separator, .nullvalue.

NULL display: an unset ``.nullvalue`` shows NULL as ``NULL`` in the modes people read
(pretty, column, line) and as an empty field in the modes programs read (csv, list), as
`streamq query` does; a set one is used in every text mode. json always writes null.
"""

from __future__ import annotations

import re
from typing import Any

from .._version import __version__

HUMAN_MODES = ("pretty", "column", "line")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MetaCommands:
    """Mixed into streamq.cli.shell.Shell; uses its out, mode, headers, timer, conn and error()."""

    nullvalue: str | None = None
    separator: str = "|"
    out: Any
    mode: str
    headers: bool
    timer: bool
    conn: Any
    lineno: int
    connected_to: str | None = None  # the daemon's control socket, when the shell runs there

    def null_text(self) -> str | None:
        """What NULL prints as in the current mode (None: the writer's own way)."""
        if self.mode == "json":
            return None
        if self.nullvalue is not None:
            return self.nullvalue
        return "NULL" if self.mode in HUMAN_MODES else None

    def do_all(self, args: list[str]) -> None:
        if len(args) != 1 or not _IDENTIFIER.match(args[0]):
            return self.error("usage: .all TABLE", self.lineno)
        self.run_sql(f'SELECT * FROM "{args[0]}";', self.lineno)

    def do_separator(self, args: list[str]) -> None:
        if len(args) != 1 or not args[0]:
            return self.error('usage: .separator STRING   (e.g. .separator ","; used by the list mode)', self.lineno)
        self.separator = args[0].encode().decode("unicode_escape")  # \t as sqlite3 takes it

    def do_nullvalue(self, args: list[str]) -> None:
        if len(args) != 1:
            return self.error('usage: .nullvalue STRING   (e.g. .nullvalue "")', self.lineno)
        self.nullvalue = args[0]

    def do_show(self, args: list[str]) -> None:
        null = self.null_text()
        settings = {
            "version": __version__,
            "database": f"daemon at {self.connected_to}" if self.connected_to else "this host (a local connection)",
            "headers": "on" if self.headers else "off",
            "mode": self.mode,
            "nullvalue": f'"{null if null is not None else ""}"' + ("" if self.nullvalue is not None else " (default)"),
            "separator": f'"{self.separator}"',
            "timer": "on" if self.timer else "off",
        }
        width = max(len(key) for key in settings)
        self.out.write("".join(f"{key.rjust(width)}: {value}\n" for key, value in settings.items()))

    # provided by Shell
    def error(self, message: str, line: int | None = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def run_sql(self, sql: str, line: int) -> None:  # pragma: no cover
        raise NotImplementedError
