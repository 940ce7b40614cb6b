"""A record's event time from the value of its time field: unix seconds, or RFC 3339 text."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> float | None:
    """Unix seconds (with fractions) from a number or an RFC 3339 string; None if it is neither.

    A string without a UTC offset is read as UTC (RFC 3339 requires one; logs often omit it).
    """
    kind = type(value)
    if kind is float or kind is int:
        return float(value) if math.isfinite(value) else None
    if kind is not str:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
