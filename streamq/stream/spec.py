"""The streaming options of a query, parsed once for the daemon, `query --follow` and `tail`.

``window = "tumble 1m" | "hop 10m every 1m" | "session 30s"``, ``window_key``,
``emit = "close" | "changes"``, ``grace``, ``dedup``/``dedup_for`` and
``limit = "10/1m"``. Each parser raises ValueError with a message for a person;
the config loader and the CLI turn it into their one-line, exit-2 error.

Window bounds are whole milliseconds (the smallest unit a duration takes), so
window arithmetic is exact integer arithmetic whatever the chunking.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..config.options import parse_duration

EMITS = ("close", "changes")
_HOP = re.compile(r"^\s*hop\s+(\S+)\s+every\s+(\S+)\s*$", re.IGNORECASE)
_ONE = re.compile(r"^\s*(tumble|session)\s+(\S+)\s*$", re.IGNORECASE)
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")
WINDOW_FORMS = '"tumble 1m", "hop 10m every 1m" or "session 30s"'


def positive_ms(text: object, what: str) -> int:
    """A duration above zero, in whole milliseconds."""
    if (isinstance(text, str) and text.strip().startswith("-")) or (isinstance(text, (int, float)) and text < 0):
        raise ValueError(f"{what}: a duration cannot be negative ({text!r})")
    seconds = parse_duration(text)
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"{what}: expected a duration above zero, like '500ms', '30s' or '1m' (got {text!r})")
    return ms


@dataclass(frozen=True)
class Window:
    """A window form: ``size_ms`` (the gap for a session), ``slide_ms`` (hop; = size for tumble)."""

    kind: str  # tumble | hop | session
    size_ms: int
    slide_ms: int
    text: str

    @property
    def session(self) -> bool:
        return self.kind == "session"


def parse_window(text: object) -> Window:
    if not isinstance(text, str):
        raise ValueError(f"expected a window like {WINDOW_FORMS}")
    hop = _HOP.match(text)
    if hop:
        size = positive_ms(hop.group(1), "hop size")
        slide = positive_ms(hop.group(2), "hop slide")
        if slide > size:
            raise ValueError(f"hop {hop.group(1)} every {hop.group(2)}: the slide is larger than the size (gaps)")
        return Window("hop", size, slide, " ".join(text.split()))
    one = _ONE.match(text)
    if one:
        kind = one.group(1).lower()
        size = positive_ms(one.group(2), f"{kind} {'gap' if kind == 'session' else 'size'}")
        return Window(kind, size, size if kind == "tumble" else 0, " ".join(text.split()))
    raise ValueError(f"unknown window {text!r}: expected {WINDOW_FORMS}")


@dataclass(frozen=True)
class Limit:
    rows: int
    period_ms: int
    text: str


def parse_limit(text: object) -> Limit:
    match = _LIMIT.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected a limit like '10/1m' (rows per period), got {text!r}")
    rows = int(match.group(1))
    if rows < 1:
        raise ValueError(f"limit {text!r}: at least 1 row per period")
    return Limit(rows, positive_ms(match.group(2), "limit period"), text.strip())


def parse_emit(text: object) -> str:
    if text not in EMITS:
        raise ValueError(f"expected emit 'close' or 'changes', got {text!r}")
    return str(text)


def parse_grace(text: object) -> float:
    if isinstance(text, str) and text.strip().startswith("-"):
        raise ValueError(f"grace cannot be negative ({text!r})")
    return parse_duration(text)


@dataclass(frozen=True)
class StreamSpec:
    """Everything a query adds to its SQL to mean the same at any speed."""

    window: Window | None = None
    window_key: tuple[str, ...] = ()
    emit: str = "close"
    grace: float = 0.0
    dedup: tuple[str, ...] = ()
    dedup_for: float | None = None  # seconds; None: forever
    limit: Limit | None = None

    def __post_init__(self) -> None:
        if self.window_key and not (self.window and self.window.session):
            raise ValueError('window_key goes with a session window (window = "session 30s")')
        if self.emit == "changes" and self.window is None:
            raise ValueError("emit = 'changes' goes with a window (window = \"tumble 1m\")")
        if self.dedup_for is not None and not self.dedup:
            raise ValueError("dedup_for goes with dedup (the columns that make a row the same)")

    def check_columns(self, names: list[str]) -> None:
        """ValueError when dedup or window_key names a column the SQL does not return / read."""
        have = {n.lower() for n in names}
        for column in self.dedup:
            if column.lower() not in have:
                raise ValueError(
                    f"dedup names {column!r}, which the SQL does not return (it returns {', '.join(names)})"
                )


def stream_spec(
    *,
    window: str | None = None,
    window_key: list[str] | tuple[str, ...] = (),
    emit: str | None = None,
    grace: object = None,
    dedup: list[str] | tuple[str, ...] = (),
    dedup_for: object = None,
    limit: str | None = None,
) -> StreamSpec:
    """A StreamSpec from option values as a config or a command line gives them; ValueError if wrong."""
    return StreamSpec(
        window=parse_window(window) if window is not None else None,
        window_key=tuple(window_key or ()),
        emit=parse_emit(emit) if emit is not None else "close",
        grace=parse_grace(grace) if grace is not None else 0.0,
        dedup=tuple(dedup or ()),
        dedup_for=positive_ms(dedup_for, "dedup_for") / 1000 if dedup_for is not None else None,
        limit=parse_limit(limit) if limit is not None else None,
    )


# The options of a followed query as `query --follow` takes them (--window, --window-key, ...):
# the CLI, the web console's Live page and the control socket's follow request parse them here.
FOLLOW_OPTIONS = ("window", "window_key", "emit", "grace", "dedup", "dedup_for", "limit")


def flag(option: str) -> str:
    """``window_key`` -> ``--window-key``: how `query --follow` names an option in its messages."""
    return "--" + option.replace("_", "-")


def follow_spec(options: Mapping[str, object]) -> StreamSpec:
    """A StreamSpec from option values as `query --follow` takes them: texts, and column lists
    comma-separated (``"user,host"``; a list of names too). Unset options are None.
    ValueError with `query --follow`'s one-line message, naming the flag."""
    unknown = sorted(set(options) - set(FOLLOW_OPTIONS))
    if unknown:
        raise ValueError(f"unknown streaming option(s): {', '.join(unknown)} (known: {', '.join(FOLLOW_OPTIONS)})")
    given = {name: value for name, value in options.items() if value is not None}
    for name, value in given.items():
        if name not in ("window_key", "dedup") and not isinstance(value, str):
            raise ValueError(f"{flag(name)} takes text, like the command line's (got {value!r})")
    try:
        return stream_spec(
            window=given.get("window"),
            window_key=_column_list(given.get("window_key"), "window_key"),
            emit=given.get("emit"),
            grace=given.get("grace"),
            dedup=_column_list(given.get("dedup"), "dedup"),
            dedup_for=given.get("dedup_for"),
            limit=given.get("limit"),
        )
    except ValueError as err:
        message = str(err)
        for name in ("window_key", "dedup_for"):
            message = message.replace(f"{name} goes", f"{flag(name)} goes")
        raise ValueError(message) from None


def _column_list(value: object, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(c, str) for c in value):
        return [c.strip() for c in value if c.strip()]
    raise ValueError(f"{flag(name)} takes column names, comma-separated (got {value!r})")
