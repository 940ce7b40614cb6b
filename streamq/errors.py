"""Every error streamq raises on purpose, each with the exit code the CLI uses."""

from __future__ import annotations


class StreamqError(Exception):
    """Base class; the CLI prints the message on one line and exits with ``exit_code``."""

    exit_code = 1


class QueryError(StreamqError):
    """Bad SQL, an unknown table, a missing required constraint.

    ``offset``: where in the SQL text SQLite located the mistake (a character index), when it did.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class ConfigError(StreamqError):
    """A bad flag, config key or usage."""

    exit_code = 2


class ProcessGone(Exception):
    """A /proc/<pid> entry vanished while it was being read; the row is skipped."""


class AccessDenied(Exception):
    """A /proc entry exists but cannot be read by this user; its columns stay NULL."""
