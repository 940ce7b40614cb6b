"""The interactive shell's input: Tab completion from the table specs, and the history file.

prompt_toolkit is imported inside the functions: it costs ~100 ms, paid only by a terminal session.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import apsw

from . import output

HISTORY_FILE = ".streamq_history"
META_COMMANDS = [".tables", ".schema", ".all", ".mode", ".headers", ".timer", ".show", ".nullvalue", ".separator"]
META_COMMANDS += [".help", ".quit", ".exit"]


def history():
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    class QuietFileHistory(FileHistory):
        """A history file that turns into memory-only history when the file fails, never an error."""

        def load_history_strings(self) -> Iterator[str]:
            try:
                yield from list(super().load_history_strings())
            except OSError:
                return

        def store_string(self, string: str) -> None:
            try:
                super().store_string(string)
            except OSError:
                pass

    try:
        path = os.path.join(os.path.expanduser("~"), HISTORY_FILE)
        with open(path, "ab"):
            pass
    except OSError:  # read-only or missing home
        return InMemoryHistory()
    return QuietFileHistory(path)


def completer(shell: Any):
    from prompt_toolkit.completion import Completer, Completion

    words = CompletionWords()

    class ShellCompleter(Completer):
        def get_completions(self, document, complete_event):
            for text, start, meta in words.complete(shell.pending, document.text_before_cursor):
                yield Completion(text, start_position=start, display_meta=meta)

    return ShellCompleter()


class CompletionWords:
    """What Tab offers: meta commands, tables, columns of the tables in the statement, keywords."""

    _WORD = re.compile(r"[\w.]*$")
    _AFTER_TABLE_KEYWORD = re.compile(r"\b(?:from|join)\s+$", re.I)  # where only a table name fits

    def __init__(self) -> None:
        from ..sql.connection import load_tables
        from ..sql.functions import FUNCTIONS

        self.tables = load_tables()
        self.keywords = sorted(apsw.keywords)
        self._keywords_lower = {k.lower() for k in apsw.keywords}
        self.functions = sorted(FUNCTIONS)

    def complete(self, pending: str, before: str) -> list[tuple[str, int, str]]:
        """(text, start offset from the cursor, description) for the word before the cursor."""
        word = self._WORD.search(before).group()
        if not pending and before.lstrip().startswith("."):
            return self._meta(before.lstrip(), word)
        statement = pending + before
        if "." in word:
            qualifier, _, prefix = word.rpartition(".")
            table = self._aliases(statement).get(qualifier.lower(), qualifier)
            return self._match(prefix, self._columns([table]), "column")
        if not word:
            return []
        tables = self._match(word, list(self.tables), "table")
        if self._AFTER_TABLE_KEYWORD.search(statement[: len(statement) - len(word)]):
            return tables
        mentioned = [t for t in re.findall(r"\w+", statement) if t in self.tables]
        out = self._match(word, self._columns(mentioned or self.tables), "column") + tables
        upper = word[:1].isupper()
        out += self._match(word, [k if upper else k.lower() for k in self.keywords], "keyword")
        out += self._match(word, self.functions, "function")
        return out

    def _meta(self, before: str, word: str) -> list[tuple[str, int, str]]:
        command, _, rest = before.partition(" ")
        if not rest and command == word:
            return self._match(
                word,
                META_COMMANDS,
                "",
            )
        choices = {
            ".tables": list(self.tables),
            ".schema": list(self.tables),
            ".all": list(self.tables),
            ".mode": list(output.MODES),
        }
        return self._match(word, choices.get(command, ["on", "off"]), "")

    def _columns(self, tables) -> list[str]:
        seen: dict[str, None] = {}
        for name in tables:
            spec = self.tables.get(name)
            for col in spec.columns if spec else ():
                seen.setdefault(col.name)
        return list(seen)

    def _aliases(self, statement: str) -> dict[str, str]:
        found = {}
        for table, alias in re.findall(r"\b(\w+)(?=\s+(?:as\s+)?(\w+))", statement, re.I):
            if table in self.tables and alias.lower() not in self._keywords_lower:
                found[alias.lower()] = table
        return found

    @staticmethod
    def _match(prefix: str, choices: list[str], meta: str) -> list[tuple[str, int, str]]:
        low = prefix.lower()
        return [(c, -len(prefix), meta) for c in choices if c.lower().startswith(low) and c != prefix]
