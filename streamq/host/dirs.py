"""Listing a directory that may be absent, not a directory, or unreadable: the readers of
/sys, /etc and users' homes take that as "nothing here", never as an error."""

from __future__ import annotations

import os

from ..text import fsdecode


def names(path: str) -> list[str]:
    """The sorted names in ``path``; [] when it cannot be listed."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def subdirectories(path: str) -> list[str]:
    """The sorted names of the directories in ``path``; [] when it cannot be listed."""
    try:
        return sorted(fsdecode(n) for n in os.listdir(path) if os.path.isdir(f"{path}/{n}"))
    except OSError:
        return []
