"""The file paths a query names through pushed-down `=` and `LIKE` (osquery's patterns)."""

from __future__ import annotations

from collections.abc import Iterator

from ._common import lazy_module

globbing = lazy_module("streamq.host.globbing")


def requested_paths(ctx, column: str = "path") -> Iterator[str]:
    """Each `column = value` and each match of `column LIKE pattern`, once."""
    seen: set[str] = set()
    for path in [p for p in ctx.eq(column) or () if isinstance(p, str)]:
        if path and path not in seen:
            seen.add(path)
            yield path
    for pattern in ctx.like(column):
        for path in globbing.expand(pattern):
            if path not in seen:
                seen.add(path)
                yield path
