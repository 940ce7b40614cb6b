"""Split SQL text into its statements with SQLite's own tokenizer (``sqlite3_complete``).

``apsw.complete(text)`` is true when ``text`` ends a statement with a ``;`` that
is not inside a string, a comment or a trigger body; cutting at each such ``;``
gives the statements as SQLite would run them, one after the other.
"""

from __future__ import annotations

import re

import apsw

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)


def split(sql: str) -> list[str]:
    """The statements of ``sql``, each with its own ``;``; empty and comment-only pieces dropped."""
    statements: list[str] = []
    start = 0
    for at in _semicolons(sql):
        piece = sql[start : at + 1]
        if apsw.complete(piece):
            if not is_blank(piece):
                statements.append(piece)
            start = at + 1
    rest = sql[start:]
    if not is_blank(rest):
        statements.append(rest)
    return statements


def is_blank(sql: str) -> bool:
    """Whether ``sql`` holds nothing to run: whitespace, comments and semicolons only."""
    return not _COMMENTS.sub("", sql).replace(";", "").strip()


def _semicolons(sql: str):
    at = sql.find(";")
    while at != -1:
        yield at
        at = sql.find(";", at + 1)
