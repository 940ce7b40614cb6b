"""The one rule for bytes that are not UTF-8 (file names, command lines, environment).

SQLite text must be valid UTF-8, so undecodable bytes can't pass through as
Python's surrogate escapes. Every table decodes OS bytes with :func:`decode`:
valid UTF-8 stays as is and each invalid byte becomes the four characters
``\\xNN`` (Python's ``backslashreplace``). :func:`encode_path` reverses it, so
a name printed by one query can be used in ``WHERE path = ...`` of the next.
"""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def decode(data: bytes) -> str:
    """Bytes from the OS to SQL text: UTF-8, invalid bytes as ``\\xNN``."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data.decode("utf-8", "backslashreplace")


def fsdecode(name: str | bytes) -> str:
    """A name from ``os`` functions (str with surrogate escapes, or bytes) to SQL text."""
    if isinstance(name, str):
        try:
            name.encode()
            return name
        except UnicodeEncodeError:
            name = os.fsencode(name)
    return decode(name)


def encode_path(text: str) -> bytes:
    """SQL text back to the bytes of a path, undoing :func:`decode`'s escapes.

    A path that exists with a literal backslash-x in its name wins over the
    unescaped reading, so no real name becomes unreachable.
    """
    raw = text.encode("utf-8", "surrogateescape")
    if "\\x" not in text or os.path.lexists(raw):
        return raw
    return _unescape(text)


def _unescape(text: str) -> bytes:
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos : m.start()].encode()
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode()
    return bytes(out)
