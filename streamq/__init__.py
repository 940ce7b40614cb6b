"""streamq: the live Linux host as SQL tables, with osquery's names and columns.

>>> import streamq
>>> with streamq.connect() as conn:
...     conn.query("SELECT pid, name FROM processes WHERE pid = 1")
"""

from __future__ import annotations

from .db import Connection, connect
from .errors import ConfigError, QueryError, StreamqError
from .schema import BIGINT, BLOB, DOUBLE, INTEGER, TEXT, UNSIGNED_BIGINT, Column, QueryContext, Table, table

__all__ = [
    "BIGINT",
    "BLOB",
    "DOUBLE",
    "INTEGER",
    "TEXT",
    "UNSIGNED_BIGINT",
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
__version__ = "0.1.0"
