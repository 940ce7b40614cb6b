"""The one rule for bytes that are not UTF-8 (file names, command lines, environment).

SQLite text must be valid UTF-8, so undecodable bytes can't pass through as
Python's surrogate escapes. Tables decode OS bytes in one of two ways:

- content (command lines, file lines, user names): :func:`decode` keeps valid
  UTF-8 as is and writes each invalid byte as the four characters ``\\xNN``;
- paths (``file.path``, ``file_events.target_path``, a process's ``path``):
  :func:`decode_path` does the same and also writes a literal backslash as
  ``\\\\``. That is what makes a path unambiguous: a file literally named
  ``caf\\xe9.txt`` prints as ``caf\\\\xe9.txt``, the file whose name holds the
  byte 0xE9 as ``caf\\xe9.txt``. :func:`encode_path` is its exact inverse, so a
  path printed by one query finds that file, and only that file, in
  ``WHERE path = ...`` of the next.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\udc80-\udcff]")
_PATH_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2})")


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
            name = name.encode("utf-8", "surrogateescape")
    return decode(name)


def decode_path(name: str | bytes) -> str:
    """A path (bytes, or str from ``os`` functions) to SQL text that :func:`encode_path` reverses exactly."""
    if isinstance(name, bytes):
        if b"\\" not in name:
            try:
                return name.decode()
            except UnicodeDecodeError:
                pass
        name = name.decode("utf-8", "surrogateescape")
    elif "\\" not in name and not _SURROGATE.search(name):
        return name
    return visible(name.replace("\\", "\\\\"))


def encode_path(text: str) -> bytes:
    """SQL text back to the bytes of a path: the exact inverse of :func:`decode_path`.

    ``\\\\`` is a backslash and ``\\xNN`` the byte NN; any other backslash (typed by
    a person, not printed by a table) stays a backslash. Surrogate escapes (raw
    bytes from the command line) become their bytes.
    """
    if "\\" not in text:
        return text.encode("utf-8", "surrogateescape")
    out = bytearray()
    pos = 0
    for m in _PATH_ESCAPE.finditer(text):
        out += text[pos : m.start()].encode("utf-8", "surrogateescape")
        token = m.group(1)
        out += b"\\" if token == "\\" else bytes([int(token[1:], 16)])
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def visible(text: str) -> str:
    """Text that may hold surrogate escapes (argv, OS error messages) with them as ``\\xNN``.

    For SQL typed by a person and for messages: backslashes stay as they are.
    """
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)
