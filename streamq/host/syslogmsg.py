"""Syslog messages (RFC 3164 and RFC 5424) as syslog_events rows: bytes in, a dict out.

A datagram starts with ``<PRI>``: facility * 8 + severity. RFC 5424 follows it with
the version ``1`` and ``TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]``
(``-`` for an absent field); RFC 3164 with ``Mmm dd hh:mm:ss HOSTNAME TAG: MSG``
(or an RFC 3339 timestamp there, as rsyslog's RSYSLOG_ForwardFormat writes),
where the hostname is often left out by local senders (glibc's syslog() writes
``<13>Nov 30 13:48:31 tag[123]: msg`` to /dev/log). The facility names are rsyslog's
(its ``syslogfacility-text``), which is what osquery's rsyslog template stores.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from ..text import decode

# Indexed by facility code; the syslog sink (sinks/syslog.py) takes its names from here too.
FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip

_PRI = re.compile(rb"<(\d{1,3})>")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}  # fmt: skip
# Mmm dd hh:mm:ss (a one-digit day is padded with a space, some senders send two spaces or a 0)
_TS3164 = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?: |$)")
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*$")
# A 3164 tag: no spaces, optionally [pid], then ':'.
_TAG = re.compile(r"([^\s:\[\]]{1,48}(?:\[[^\]\s]*\])?):(?: |$)")
_BOM = "\ufeff"


class MalformedMessage(ValueError):
    """A datagram that is not a syslog message; the source counts it."""


def parse_message(data: bytes, *, default_host: str | None = None, now: float | None = None) -> dict:
    """A syslog_events row (datetime, host, severity, facility, tag, message) from one datagram.

    ``default_host`` is used when the message names none (a local sender);
    ``now`` (unix seconds) gives an RFC 3164 timestamp its year and stands in for a
    missing RFC 5424 one. MalformedMessage for anything that is not syslog.
    """
    now = time.time() if now is None else now
    data = data.rstrip(b"\r\n\0")
    m = _PRI.match(data)
    if m is None:
        raise MalformedMessage("no <PRI> at the start")
    pri = int(m.group(1))
    if pri > 191 or (len(m.group(1)) > 1 and m.group(1).startswith(b"0")):
        raise MalformedMessage(f"<{m.group(1).decode()}> is not a valid PRI")
    text = decode(data[m.end() :])
    row = _parse_5424(text[2:], now) if text.startswith("1 ") else _parse_3164(text, now)
    row["facility"] = FACILITIES[pri >> 3]
    row["severity"] = pri & 7
    if not row.get("host"):
        row["host"] = default_host
    return row


def _parse_5424(text: str, now: float) -> dict:
    fields = text.split(" ", 5)
    if len(fields) < 5:
        raise MalformedMessage("RFC 5424 header is short of fields")
    stamp, host, app, _procid, _msgid = fields[:5]
    rest = fields[5] if len(fields) == 6 else ""
    message = _skip_structured_data(rest)
    if message.startswith(_BOM):
        message = message[1:]
    return {
        "datetime": _rfc3339(stamp, now),
        "host": None if host == "-" else host,
        "tag": None if app == "-" else app,
        "message": message,
    }


def _skip_structured_data(rest: str) -> str:
    """The MSG after STRUCTURED-DATA: ``-`` or ``[id k="v" ...]...`` with \\" \\] \\\\ escaped in values."""
    if rest == "-" or rest.startswith("- "):
        return rest[2:]
    if not rest.startswith("["):
        raise MalformedMessage("RFC 5424 structured data is neither '-' nor '[...]'")
    i, n = 0, len(rest)
    while i < n and rest[i] == "[":
        quoted = False
        i += 1
        while i < n:
            c = rest[i]
            if quoted and c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "]" and not quoted:
                break
            i += 1
        if i >= n:
            raise MalformedMessage("RFC 5424 structured data is not closed")
        i += 1
    if i == n:
        return ""
    if rest[i] != " ":
        raise MalformedMessage("RFC 5424 structured data is not followed by a space")
    return rest[i + 1 :]


def _rfc3339(stamp: str, now: float) -> str:
    """The timestamp as RFC 3339 text (as sent, if valid); the receive time for ``-``."""
    if stamp == "-":
        return _format(datetime.fromtimestamp(now, UTC).astimezone())
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError as err:
        raise MalformedMessage(f"{stamp!r} is not an RFC 3339 timestamp") from err
    if "T" not in stamp or parsed.tzinfo is None:
        raise MalformedMessage(f"{stamp!r} has no time zone")
    return stamp


def _parse_3164(text: str, now: float) -> dict:
    m = _TS3164.match(text)
    if m is not None and m.group(1) in _MONTHS:
        month, day = _MONTHS[m.group(1)], int(m.group(2))
        hour, minute, second = int(m.group(3)), int(m.group(4)), int(m.group(5))
        stamp = _format(_with_year(month, day, hour, minute, second, now))
        rest = text[m.end() :]
    else:  # rsyslog's RSYSLOG_ForwardFormat: the 3164 layout with an RFC 3339 timestamp
        first, _, rest = text.partition(" ")
        try:
            stamp = _rfc3339(first, now) if first[:1].isdigit() else None
        except MalformedMessage:
            stamp = None
        if stamp is None:
            raise MalformedMessage("neither an RFC 5424 header nor an RFC 3164 timestamp")
    host = None
    first, _, after = rest.partition(" ")
    if first and _TAG.match(rest) is None and _HOSTNAME.match(first):
        host, rest = first, after
    tag_match = _TAG.match(rest)
    tag = None
    if tag_match is not None:
        tag, rest = tag_match.group(1), rest[tag_match.end() :]
    return {"datetime": stamp, "host": host, "tag": tag, "message": rest}


def _with_year(month: int, day: int, hour: int, minute: int, second: int, now: float) -> datetime:
    """RFC 3164 has no year or zone: this host's local time, in the year that puts it nearest ``now``
    (a December message read on January 1st is from last year)."""
    local_now = datetime.fromtimestamp(now).astimezone()
    for year in (local_now.year, local_now.year - 1, local_now.year + 1):
        try:
            when = datetime(year, month, day, hour, minute, second).astimezone()
        except ValueError:
            continue  # Feb 29 in a year that has none
        if abs(when - local_now) <= timedelta(days=183):
            return when
    raise MalformedMessage(f"no year has {month}/{day}")


def _format(when: datetime) -> str:
    """rsyslog's date-rfc3339: 2026-11-30T13:48:31+00:00 (fractions only when the time has them)."""
    return when.isoformat(timespec="microseconds" if when.microsecond else "seconds")
