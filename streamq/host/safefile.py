"""Reading a file that someone else controls: never block, never follow a trap.

Trust stores, unit directories and users' homes can hold FIFOs (an open would
block), devices, runaway files or symlinks planted to make a root query read
/etc/shadow. Every such read goes through :func:`read_regular`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection

from ..text import encode_path


def read_regular(
    path: str | bytes,
    *,
    max_bytes: int,
    owners: Collection[int] | None = None,
    follow: bool = True,
) -> bytes | None:
    """The content of a regular file, or None if absent, unreadable or unsafe.

    ``owners``: the uids the file may belong to (None: anyone). ``follow=False``
    refuses a symlink as the last component. Files over ``max_bytes`` are refused.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        if owners is not None and st.st_uid not in owners:
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


_MAX_USER_FILE = 64 << 20  # a history file past this is not read (a sparse or runaway file)


def read_user_file(path: str, uid: int, owners: Collection[int] | None = None) -> bytes | None:
    """The content of a file in ``uid``'s home, or None if absent, unsafe or unreadable.

    ``owners``: the uids the file may belong to, by default the user and root; a
    symlink as the last component is refused (a user could point it at /etc/shadow).
    """
    allowed = owners if owners is not None else (uid, 0)
    return read_regular(encode_path(path), max_bytes=_MAX_USER_FILE, owners=allowed, follow=False)
