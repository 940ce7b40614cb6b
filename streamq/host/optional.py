"""Optional libraries of some tables (libmagic, yara, augeas): imported on first use.

A table whose library is missing yields no rows and says so once on stderr
(the `streamq.tables` logger), never a traceback: the rest of streamq works
without it.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any


def _warn(message: str, *args: object) -> None:
    import logging  # ~5 ms: paid by the first note, not by every cold start

    logging.getLogger("streamq.tables").warning(message, *args)


@cache
def optional_module(module: str, install_hint: str) -> Any | None:
    """The module, or None after one warning naming what to install."""
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as err:  # OSError: the binding's C library is missing
        _warn("%s is unavailable (%s); install %s", module, err, install_hint)
        return None


def note_once(message: str) -> None:
    _note(message)


@cache
def _note(message: str) -> None:
    _warn("%s", message)
