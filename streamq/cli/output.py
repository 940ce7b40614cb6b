"""Result formatting shared by `streamq query` and the shell: pretty, json, csv, line, list."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

MODES = ("pretty", "column", "json", "csv", "line", "list")


def cell(value: Any) -> str:
    """A value as text for the text modes; NULL is an empty cell, as in osqueryi."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def jsonable(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def write_rows(
    out: TextIO,
    mode: str,
    names: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    headers: bool = True,
    null: str | None = None,
    separator: str = "|",
) -> int:
    """Write ``rows`` in ``mode``; return how many rows were written.

    ``null``: the text NULL prints as in the text modes (default: empty, as osqueryi);
    ``separator``: between the list mode's columns (the shell's .nullvalue and .separator)."""
    if null is not None and mode != "json":
        rows = ([null if v is None else v for v in row] for row in rows)
    if mode == "list":
        return _list(out, names, rows, headers, separator)
    writer = {"pretty": _pretty, "column": _column, "json": _json, "csv": _csv, "line": _line}[mode]
    return writer(out, names, rows, headers)


def _pretty(out: TextIO, names: Sequence[str], rows: Iterable[Sequence[Any]], headers: bool) -> int:
    # Widths need every row, so the pretty mode buffers; the other modes stream.
    text_rows = [[cell(v) for v in row] for row in rows]
    if not names or not text_rows:
        return 0  # as osqueryi: no rows, no table
    widths = [len(n) if headers else 0 for n in names]
    for row in text_rows:
        for i, v in enumerate(row):
            if len(v) > widths[i]:
                widths[i] = len(v)
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"
    buf = io.StringIO()
    buf.write(rule)
    if headers:
        buf.write("| " + " | ".join(n.ljust(w) for n, w in zip(names, widths)) + " |\n")
        buf.write(rule)
    for row in text_rows:
        buf.write("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |\n")
    if text_rows:
        buf.write(rule)
    out.write(buf.getvalue())
    return len(text_rows)


def _column(out: TextIO, names: Sequence[str], rows: Iterable[Sequence[Any]], headers: bool) -> int:
    """sqlite3's column mode: left-aligned columns two spaces apart, the header underlined with dashes."""
    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [len(n) if headers else 0 for n in names]
    for row in text_rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]
    lines = [[n.ljust(w) for n, w in zip(names, widths)], ["-" * w for w in widths]] if headers and names else []
    lines += [[v.ljust(w) for v, w in zip(row, widths)] for row in text_rows]
    out.write("".join("  ".join(line).rstrip() + "\n" for line in lines))
    return len(text_rows)


def _json(out: TextIO, names: Sequence[str], rows: Iterable[Sequence[Any]], headers: bool) -> int:
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps({n: jsonable(v) for n, v in zip(names, row)}, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _csv(out: TextIO, names: Sequence[str], rows: Iterable[Sequence[Any]], headers: bool) -> int:
    writer = csv.writer(out, lineterminator="\n")
    if headers:
        writer.writerow(names)
    count = 0
    for row in rows:
        writer.writerow([cell(v) for v in row])
        count += 1
    return count


def _line(out: TextIO, names: Sequence[str], rows: Iterable[Sequence[Any]], headers: bool) -> int:
    width = max((len(n) for n in names), default=0)
    count = 0
    for row in rows:
        if count:
            out.write("\n")
        for n, v in zip(names, row):
            out.write(f"{n.rjust(width)} = {cell(v)}\n")
        count += 1
    return count


def _list(out: TextIO, names: Sequence[str], rows: Iterable[Sequence[Any]], headers: bool, sep: str = "|") -> int:
    if headers and names:
        out.write(sep.join(names) + "\n")
    count = 0
    for row in rows:
        out.write(sep.join(cell(v) for v in row) + "\n")
        count += 1
    return count


class StreamPrinter:
    """Rows printed one at a time as they arrive (``--follow``, ``tail``), flushed at once.

    json: one object per line; csv: a header then rows; line: blocks; otherwise
    pipe-separated values under a header printed once (the pretty mode needs all
    rows to align, which a stream never has).
    """

    def __init__(self, out: TextIO, mode: str) -> None:
        self.out = out
        self.mode = mode
        self._header_done = False
        self._csv = csv.writer(out, lineterminator="\n") if mode == "csv" else None

    def __call__(self, names: Sequence[str], row: Sequence[Any]) -> None:
        out = self.out
        if self.mode == "json":
            out.write(json.dumps({n: jsonable(v) for n, v in zip(names, row)}, ensure_ascii=False) + "\n")
        elif self.mode == "line":
            if self._header_done:
                out.write("\n")
            self._header_done = True
            width = max((len(n) for n in names), default=0)
            out.write("".join(f"{n.rjust(width)} = {cell(v)}\n" for n, v in zip(names, row)))
        elif self._csv is not None:
            if not self._header_done:
                self._csv.writerow(names)
                self._header_done = True
            self._csv.writerow([cell(v) for v in row])
        else:
            if not self._header_done:
                out.write("|".join(names) + "\n")
                self._header_done = True
            out.write("|".join(cell(v) for v in row) + "\n")
        out.flush()
