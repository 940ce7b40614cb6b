"""The command line: ``streamq query|shell|tail|tables|schema|run|fleet`` (see :mod:`.command`)."""

from __future__ import annotations

from .command import main

__all__ = ["main"]
