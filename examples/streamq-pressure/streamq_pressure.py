"""The `pressure` table: Linux pressure stall information, from /proc/pressure.

A kernel built without PSI, or booted with psi=0, has no /proc/pressure or
refuses to read it; the table then has no rows.
"""

from __future__ import annotations

import streamq
from streamq import BIGINT, DOUBLE, TEXT, Column

RESOURCES = ("cpu", "io", "memory", "irq")


@streamq.table(
    "pressure",
    "Pressure stall information: how long tasks waited for CPU, I/O or memory.",
    [
        Column("resource", TEXT, "The resource waited for: cpu, io, memory or irq.", index=True),
        Column("kind", TEXT, "some: at least one task stalled; full: every non-idle task stalled."),
        Column("avg10", DOUBLE, "Percent of the last 10 seconds spent stalled."),
        Column("avg60", DOUBLE, "Percent of the last 60 seconds spent stalled."),
        Column("avg300", DOUBLE, "Percent of the last 300 seconds spent stalled."),
        Column("total", BIGINT, "Microseconds spent stalled since boot."),
    ],
    examples=("SELECT resource, kind, avg10 FROM pressure WHERE resource = 'io'",),
    cost=8,
)
def gen_pressure(ctx):
    for resource in ctx.eq("resource") or RESOURCES:
        if resource not in RESOURCES:
            continue  # never build a path from an unknown value
        try:
            with open(f"/proc/pressure/{resource}", "rb") as f:
                data = f.read()
        except OSError:  # absent (old kernel, no irq accounting) or disabled (psi=0): no rows
            continue
        for line in data.splitlines():
            row = parse_line(line)
            if row is not None:
                yield {"resource": resource, **row}


def parse_line(line: bytes) -> dict | None:
    """``some avg10=0.12 avg60=0.05 avg300=0.01 total=123456`` to a row, or None if malformed."""
    kind, *fields = line.split()
    row: dict = {"kind": kind.decode("ascii", "replace")}
    for field in fields:
        key, sep, value = field.partition(b"=")
        if not sep:
            return None
        try:
            row[key.decode("ascii", "replace")] = int(value) if key == b"total" else float(value)
        except ValueError:
            row[key.decode("ascii", "replace")] = None  # unreadable value: NULL, the other columns stay
    return row
