"""A query's streaming state in the state store: open windows and their rows, first-seen keys,
the watermark and the limit's counters, written in the same transaction as the run's results.

The engine (streamq.stream) records what each run changed in journals; :func:`changes`
turns them into statements for StateStore.commit, and :func:`committed` empties them
once that commit succeeded. After a failed commit the scheduler drops the query's
pipeline and :func:`restore` rebuilds it from what was committed: memory never runs
ahead of the disk. Window rows are ring entries ``(eid, time, row)``, stored as JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..stream.pipeline import Pipeline

_UPSERT_PANE = "INSERT OR REPLACE INTO windows (query, pane, start, stop, key) VALUES (?,?,?,?,?)"
_INSERT_ROW = "INSERT INTO window_rows (query, pane, segment, row) VALUES (?,?,?,?)"
_MERGE_ROWS = "UPDATE window_rows SET pane = ? WHERE query = ? AND pane = ?"
_DROP_PANE = "DELETE FROM windows WHERE query = ? AND pane = ?"
_DROP_ROWS = "DELETE FROM window_rows WHERE query = ? AND pane = ?"
_UPSERT_KEY = "INSERT OR REPLACE INTO dedup (query, key, seen) VALUES (?,?,?)"
_DROP_KEY = "DELETE FROM dedup WHERE query = ? AND key = ?"


def encode_entry(entry: tuple) -> bytes:
    return orjson.dumps(entry, default=_bytes_hex)


def decode_entry(blob: bytes) -> tuple:
    eid, when, row = orjson.loads(blob)
    return (eid, when, tuple(row) if type(row) is list else row)


def _bytes_hex(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} in an event row")


class _Batcher:
    """Statements in order, consecutive runs of the same one merged for executemany."""

    def __init__(self) -> None:
        self.out: list[tuple[str, list[tuple]]] = []

    def add(self, statement: str, params: tuple) -> None:
        if self.out and self.out[-1][0] == statement:
            self.out[-1][1].append(params)
        else:
            self.out.append((statement, [params]))


def changes(name: str, pipe: Pipeline, now: float) -> list[tuple[str, list[tuple]]]:
    """What this run changed in ``pipe``'s windows and dedup keys, as statements for the store."""
    batch = _Batcher()
    windows = pipe.windows
    if windows is not None and windows.journal:
        for entry in windows.journal:
            kind = entry[0]
            if kind == "row":
                batch.add(_INSERT_ROW, (name, entry[1], entry[2], encode_entry(entry[3])))
            elif kind in ("open", "bounds"):
                pane = entry[1]
                batch.add(_UPSERT_PANE, (name, pane.id, pane.start, pane.end, orjson.dumps(pane.key, default=str)))
            elif kind == "merge":
                batch.add(_MERGE_ROWS, (entry[1], name, entry[2]))
                batch.add(_DROP_PANE, (name, entry[2]))
            elif kind == "close":
                batch.add(_DROP_ROWS, (name, entry[1]))
                batch.add(_DROP_PANE, (name, entry[1]))
    dedup = pipe.dedup
    if dedup is not None:
        for key, seen in dedup.journal or ():
            batch.add(_UPSERT_KEY, (name, key, seen))
        for key in dedup.expire(now):
            batch.add(_DROP_KEY, (name, key))
    return batch.out


def committed(pipe: Pipeline) -> None:
    if pipe.windows is not None and pipe.windows.journal is not None:
        pipe.windows.journal.clear()
    if pipe.dedup is not None and pipe.dedup.journal is not None:
        pipe.dedup.journal.clear()


def summary(pipe: Pipeline) -> dict:
    """The small part of the state, kept in the query's row (JSON: no infinities)."""
    out: dict = {}
    windows = pipe.windows
    if windows is not None:
        mark = windows.watermark
        out.update(watermark=None if mark == float("-inf") else mark, late=windows.late, dropped=windows.dropped)
    if pipe.limit is not None:
        out["limit"] = pipe.limit.state()
    return out


def restore(pipe: Pipeline, summary: dict, panes: list[tuple], rows: list[tuple], keys: list[tuple]) -> None:
    """Rebuild ``pipe`` as it was committed (``StateStore.load_stream`` gives panes, rows, keys)."""
    windows = pipe.windows
    if windows is not None:
        mark = summary.get("watermark")
        windows.watermark = float("-inf") if mark is None else mark
        windows.late = summary.get("late", 0)
        windows.dropped = summary.get("dropped", 0)
        segments: dict[int, dict[int, list]] = {}
        for pane, segment, row in rows:
            segments.setdefault(pane, {}).setdefault(segment, []).append(decode_entry(row))
        for pane, start, stop, key in panes:
            windows.restore(pane, _number(start), _number(stop), tuple(orjson.loads(key)), segments.get(pane, {}))
    if pipe.limit is not None and "limit" in summary:
        pipe.limit.load(summary["limit"])
    if pipe.dedup is not None:
        pipe.dedup.seen = {bytes(key): seen for key, seen in keys}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
