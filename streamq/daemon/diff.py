"""Differential results: what a query's rows gained and lost since its last run.

Rows are compared as a multiset: two identical rows are two rows, and losing
one of them is one ``removed``. A row's identity is its JSON encoding with
columns in query order, which is also how the diff base is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

Row = dict[str, Any]


def encode_row(row: Row) -> bytes:
    return orjson.dumps(row)


def diff(previous: Iterable[bytes], current: Sequence[Row]) -> tuple[list[Row], list[Row], list[bytes]]:
    """(added, removed, new base): ``previous`` is the old base as encoded rows."""
    encoded = [encode_row(r) for r in current]
    old = Counter(previous)
    new = Counter(encoded)
    added_keys = new - old
    removed_keys = old - new
    added: list[Row] = []
    for key, row in zip(encoded, current):
        if added_keys.get(key, 0) > 0:
            added.append(row)
            added_keys[key] -= 1
    removed = [orjson.loads(key) for key, n in removed_keys.items() for _ in range(n)]
    return added, removed, encoded
