"""`tail`'s table ``stream``: a batch of JSON lines, parsed by SQLite's JSON code, not by Python.

A batch's lines are joined into one JSON array (a byte join) and turned into JSONB
by one call of SQLite's parser; the view ``stream`` reads each column with
``value ->> '$."key"'`` from ``jsonb_each``. (SQLite's parser also takes JSON5:
comments, unquoted keys; the daemon's jsonl source, which decodes with orjson, does not.)
No row becomes a Python object unless the SQL returns it: this is what makes `tail`
several times faster than decoding each line with orjson and inserting it (profiled
in bench/bench_tail.py). Columns are untyped, as JSON gave them: objects and arrays
as JSON text, true/false as 1/0. ``raw`` is the line itself.

A batch that fails the fast check is sorted line by line (the same parser per line),
so which lines are skipped never depends on how lines were batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import apsw
import orjson

from .eventtime import parse_time


def _path(key: str) -> str:
    """A JSON path literal for object key ``key``, as SQL text."""
    return "'$.\"" + key.replace("'", "''") + "\"'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class JsonLines:
    """The view ``table`` over the lines of the last :meth:`load`."""

    def __init__(
        self,
        conn: apsw.Connection,
        *,
        table: str = "stream",
        max_bytes: int = 1_048_576,
        skip: Callable[[str], None] = lambda why: None,
        extras: Sequence[str] = (),
        time_field: str | None = None,
    ) -> None:
        self.conn = conn
        self.table = table
        self.max_bytes = max_bytes
        self.skip = skip
        self.extras = tuple(extras)  # columns given beside each line (MQTT's topic)
        self.time_field = time_field  # its value, as unix seconds, is the column `time`
        self.lines: list[bytes] = []
        self.extra_values: dict[str, list] = {}
        self.doc = b"\x0b"  # JSONB of an empty array
        # The batch reaches SQL through a function, not a table: no copy into table pages.
        conn.create_scalar_function("sq_doc", lambda: self.doc, 0)
        conn.create_scalar_function("sq_raw", self._raw, 1)
        conn.create_scalar_function("sq_extra", self._extra, 2)
        conn.create_scalar_function("sq_time", parse_time, 1, deterministic=True)

    def _raw(self, key: int) -> str:
        return self.lines[key].decode().strip()

    def _extra(self, name: str, key: int) -> object:
        return self.extra_values[name][key]

    def define(self, columns: Sequence[str]) -> None:
        """(Re)create the view with ``columns`` read from each record, then ``raw`` and the extras."""
        cols = [f"value ->> {_path(c)} AS {_quote(c)}" for c in columns]
        cols.append("sq_raw(key) AS raw")
        cols += [f"sq_extra('{e}', key) AS {_quote(e)}" for e in self.extras]
        if self.time_field is not None:  # computed only when the SQL reads it
            cols.append(f"sq_time(value ->> {_path(self.time_field)}) AS time")
        self.conn.execute(
            f"DROP VIEW IF EXISTS temp.{_quote(self.table)}; "
            f"CREATE TEMP VIEW {_quote(self.table)} AS SELECT {', '.join(cols)} FROM jsonb_each(sq_doc())"
        )

    def load(self, lines: list[bytes], *, trusted: bool = False, extras: dict[str, list] | None = None) -> list[bytes]:
        """Make ``lines`` the rows of the view; return the lines kept (skipped ones are counted)."""
        extras = extras or {}
        if trusted:
            self._convert(b"[" + b",".join(lines) + b"]")
        elif not self._loads_whole(lines):
            lines, extras = self._sort(lines, extras)
            self._convert(b"[" + b",".join(lines) + b"]")
        self.lines, self.extra_values = lines, extras
        return lines

    def _loads_whole(self, lines: list[bytes]) -> bool:
        """The fast path: every line one complete object, and the whole batch valid JSON."""
        if not lines or b"" in lines or max(map(len, lines)) > self.max_bytes:
            return False
        joined = b"\n".join(lines)  # lines hold no newline: each "\n{" starts a line with "{"
        if joined[:1] != b"{" or joined.count(b"\n{") != len(lines) - 1:
            return False
        try:
            self._convert(b"[" + joined.replace(b"\n", b",") + b"]")
        except (apsw.SQLError, UnicodeDecodeError):
            return False
        (count,) = self.conn.execute("SELECT json_array_length(?)", (self.doc,)).fetchone()
        return count == len(lines)  # a line like `{..},{..}` is two elements: sort it out line by line

    def _convert(self, doc: bytes) -> None:
        """JSON text to JSONB, parsed once by SQLite (which also takes JSON5, as jsonb() does)."""
        (self.doc,) = self.conn.execute("SELECT jsonb(?)", (doc.decode(),)).fetchone()

    def _sort(self, lines: list[bytes], extras: dict[str, list]) -> tuple[list[bytes], dict[str, list]]:
        kept: list[bytes] = []
        index: list[int] = []
        check = self.conn.cursor()
        for i, line in enumerate(lines):
            data = line.strip()
            if not data:
                continue
            if len(data) > self.max_bytes:
                self.skip(f"record of {len(data)} bytes is over the {self.max_bytes}-byte limit")
                continue
            try:
                (kind,) = check.execute("SELECT json_type(jsonb(?))", (data.decode(),)).fetchone()
            except (apsw.SQLError, UnicodeDecodeError):
                self.skip(f"malformed JSON: {data[:40].decode(errors='replace')!r}")
                continue
            if kind != "object":
                self.skip("a record must be a JSON object")
                continue
            kept.append(data)
            index.append(i)
        return kept, {name: [values[i] for i in index] for name, values in extras.items()}

    def values(self, column: str) -> list:
        """Each loaded record's value of ``column`` (None where it has none), in line order.

        Read as JSON text in one array and decoded by orjson: numbers keep the exact
        text the record gave, as the daemon's jsonl source (orjson) reads them."""
        sql = f"SELECT json_group_array(value -> {_path(column)}) FROM jsonb_each(sq_doc())"
        (text,) = self.conn.execute(sql).fetchone()
        return orjson.loads(text)

    def keys(self, columns: Sequence[str]) -> list[tuple]:
        """Each loaded record's values of ``columns`` as a tuple, in line order."""
        paths = ", ".join(f"value -> {_path(c)}" for c in columns)
        sql = f"SELECT json_group_array(json_array({paths})) FROM jsonb_each(sq_doc())"
        (text,) = self.conn.execute(sql).fetchone()
        return [tuple(values) for values in orjson.loads(text)]
