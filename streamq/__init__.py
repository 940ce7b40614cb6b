"""streamq: the live Linux host as SQL tables, with osquery's names and columns.

>>> import streamq
>>> with streamq.connect() as conn:
...     conn.query("SELECT pid, name FROM processes WHERE pid = 1")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__
from .errors import ConfigError, QueryError, StreamqError
from .sql.connection import Connection, connect
from .sql.schema import BIGINT, BLOB, DOUBLE, INTEGER, TEXT, UNSIGNED_BIGINT, Column, QueryContext, Table, table

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "BIGINT",
    "BLOB",
    "DOUBLE",
    "INTEGER",
    "TEXT",
    "UNSIGNED_BIGINT",
    "Client",
    "Column",
    "ConfigError",
    "Connection",
    "QueryContext",
    "QueryError",
    "StreamqError",
    "Table",
    "connect",
    "table",
]


def __getattr__(name: str) -> Any:
    # The daemon client is imported on first use: most programs never talk to a daemon.
    if name == "Client":
        from .client import Client

        globals()["Client"] = Client
        return Client
    raise AttributeError(f"module 'streamq' has no attribute {name!r}")
