"""Extended attributes of a file, and file capabilities in libcap's text form.

Attribute values are bytes; a value that is NUL-terminated printable text is
shown as text, anything else base64-encoded (osquery's rule). The
security.capability attribute is shown as `getcap` shows it, through libcap's
own cap_to_text (libcap2 is part of every Debian system); without libcap the
raw attribute is given base64-encoded like any other binary value.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import os
from functools import cache

CAPABILITY = "security.capability"


def read_xattrs(path: str | bytes) -> list[tuple[str, bytes]] | None:
    """(name, value) pairs without following a final symlink's target; None if the file is missing."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError:
        return []  # no xattr support or no permission: nothing to show
    pairs = []
    for name in names:
        try:
            pairs.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue  # removed meanwhile or unreadable
    return pairs


def shown_value(value: bytes) -> tuple[str, int]:
    """(value, base64 flag): text when NUL-terminated and printable, else base64."""
    if not value:
        return "", 1
    if value.endswith(b"\0"):
        text = value[:-1]
        if all(0x20 <= b < 0x7F for b in text):
            return text.decode("ascii"), 0
        return base64.b64encode(text).decode("ascii"), 1
    return base64.b64encode(value).decode("ascii"), 1


@cache
def _libcap():
    name = ctypes.util.find_library("cap")
    if not name:
        return None
    lib = ctypes.CDLL(name, use_errno=True)
    lib.cap_get_file.restype = ctypes.c_void_p
    lib.cap_get_file.argtypes = [ctypes.c_char_p]
    lib.cap_to_text.restype = ctypes.c_void_p
    lib.cap_to_text.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.cap_free.argtypes = [ctypes.c_void_p]
    return lib


def capability_text(path: str | bytes) -> str | None:
    """The file's capabilities as libcap writes them ("cap_net_raw=ep"), None when unavailable."""
    lib = _libcap()
    if lib is None:
        return None
    cap = lib.cap_get_file(os.fsencode(path))
    if not cap:
        return None
    try:
        text = lib.cap_to_text(cap, None)
        if not text:
            return None
        try:
            return ctypes.string_at(text).decode()
        finally:
            lib.cap_free(text)
    finally:
        lib.cap_free(cap)
