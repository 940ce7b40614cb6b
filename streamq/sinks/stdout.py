"""A short human line per result on stdout: `time query action key=value ...`."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import orjson

from ..config.options import SinkOptions, one_of, option
from .base import Sink

_MAX_VALUE = 60


def human_line(line: bytes) -> str:
    item = orjson.loads(line)
    when = item.get("calendarTime", "")
    name = item.get("name", "?")
    if "columns" in item:
        return f"{when}  {name}  {item.get('action', '')}  {_pairs(item['columns'])}"
    if "snapshot" in item:
        return f"{when}  {name}  snapshot  {len(item['snapshot'])} rows"
    diff = item.get("diffResults", {})
    return f"{when}  {name}  +{len(diff.get('added', []))} -{len(diff.get('removed', []))}"


def _pairs(columns: dict) -> str:
    parts = []
    for key, value in columns.items():
        text = "" if value is None else str(value)
        if len(text) > _MAX_VALUE:
            text = text[: _MAX_VALUE - 1] + "…"
        parts.append(f"{key}={text}")
    return " ".join(parts)


def human_lines(lines: list[bytes]) -> list[str]:
    """Human lines for one batch; a first run's baseline (counter 0) is one summary line,
    not hundreds of 'added' lines nobody reads on a terminal."""
    first = orjson.loads(lines[0])
    if first.get("counter") == 0 and first.get("action") == "added" and len(lines) > 3:
        when, name = first.get("calendarTime", ""), first.get("name", "?")
        return [f"{when}  {name}  baseline: {len(lines)} rows (first run)"]
    return [human_line(line) for line in lines]


@dataclass(frozen=True)
class StdoutSinkOptions(SinkOptions):
    format: str = option("human", one_of("human", "json"), doc="A short line per result, or the JSON line.")


class StdoutSink(Sink):
    type = "stdout"
    Options = StdoutSinkOptions

    async def send(self, query: str, lines: list[bytes]) -> None:
        out = sys.stdout
        if self.options.format == "json":
            out.write("".join(line.decode() + "\n" for line in lines))
        else:
            out.write("".join(text + "\n" for text in human_lines(lines)))
        out.flush()
