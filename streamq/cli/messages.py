"""One-line messages to the user on stderr: ``streamq: error: ...`` and ``streamq: warning: ...``."""

from __future__ import annotations

import sys

from ..text import visible


def error(message: str) -> None:
    text = " ".join(message.split()) or "failed without a message (a bug: please report it)"
    print(f"streamq: error: {visible(text)}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"streamq: warning: {visible(' '.join(message.split()))}", file=sys.stderr)
