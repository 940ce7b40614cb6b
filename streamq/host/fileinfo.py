"""Reading files for the file tables: directory listings, birth times, digests, setuid files.

Paths are bytes here: a path read through /proc/<pid>/root, or with a name that
is not UTF-8, goes to the OS exactly as given.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator

from ..text import decode_path

_CHUNK = 1 << 20


# osquery's suid_bin roots (all recursive), plus /usr/libexec and /opt; /usr/lib only to depth 3,
# where distributions keep their setuid helpers (ssh-keysign, dbus-daemon-launch-helper,
# utempter), because its full tree is ~75k files and would cost most of a second.
SUID_ROOTS = (
    ("/bin", None),
    ("/sbin", None),
    ("/usr/bin", None),
    ("/usr/sbin", None),
    ("/usr/local/bin", None),
    ("/usr/local/sbin", None),
    ("/usr/libexec", None),
    ("/usr/lib", 3),
    ("/opt", None),
    ("/tmp", None),
)


def describe(path: bytes) -> tuple[os.stat_result, bool, str | None] | None:
    """(stat, is a symlink, the link's target) of ``path``, or None when it does not exist.

    As osquery does, a symlink is described by what it points to; a dangling
    link (or a loop) falls back to the link itself.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISLNK(st.st_mode):
        return st, False, None
    target = None
    try:
        target = decode_path(os.readlink(path))
    except OSError:
        pass
    try:
        st = os.stat(path)
    except OSError:
        pass  # dangling (or a loop): describe the link itself
    return st, True, target


def is_regular(path: bytes) -> bool:
    """Whether ``path`` is a regular file, or a link to one."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def list_dir(path: bytes) -> list[str]:
    """The entry names of a directory as SQL text; [] when missing, not a directory or unreadable."""
    try:
        return [decode_path(name) for name in os.listdir(path)]
    except OSError:
        return []  # missing, not a directory, or unreadable: no rows


def birth_time_reader():
    """A function (path, stat) -> birth time or None: st_birthtime where Python has it, else statx(2)."""
    if hasattr(os.stat_result, "st_birthtime"):
        return lambda fs, st: int(st.st_birthtime)
    return StatxBirth().birth_time


class StatxBirth:
    """Birth time through glibc's statx(3) (Python 3.11's os has no statx); None where unsupported."""

    _BTIME = 0x800  # STATX_BTIME
    _AT_FDCWD = -100
    _AT_SYMLINK_NOFOLLOW = 0x100

    def __init__(self) -> None:
        import ctypes

        self._buf = ctypes.create_string_buffer(256)  # sizeof(struct statx)
        try:
            self._statx = ctypes.CDLL(None, use_errno=True).statx
        except (AttributeError, OSError):
            self._statx = None

    def birth_time(self, path: bytes, st: os.stat_result) -> int | None:
        if self._statx is None:
            return None
        # Same view as the other columns: follow the link, or describe it when it dangles.
        flags = self._AT_SYMLINK_NOFOLLOW if stat.S_ISLNK(st.st_mode) else 0
        if self._statx(self._AT_FDCWD, path, flags, self._BTIME, self._buf) != 0:
            return None
        mask, btime = int.from_bytes(self._buf.raw[0:4], sys.byteorder), self._buf.raw[80:88]
        return int.from_bytes(btime, sys.byteorder, signed=True) if mask & self._BTIME else None


def digests(path: bytes, wanted: list[str]) -> dict[str, str | None]:
    """Hex digests of the file at ``path`` for the ``wanted`` algorithms, read once in 1 MiB chunks."""
    if not wanted:
        return {}
    import hashlib

    hashers = [hashlib.new(name) for name in wanted]
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    try:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                for h in hashers:
                    h.update(view[:n])
    except OSError:
        return dict.fromkeys(wanted)  # unreadable: the file is there, its digests are unknown
    return {name: h.hexdigest() for name, h in zip(wanted, hashers)}


def suid_files(root: bytes) -> Iterator[tuple[str, os.stat_result]]:
    """Setuid/setgid regular files below each search root, like ``find ROOT -xdev -perm /6000 -type f``.

    A root that is a symlink (/bin -> usr/bin on merged-/usr systems) is
    skipped, as find skips it, so no binary is listed twice; symlinks below a
    root are never followed.
    """
    for top, max_depth in SUID_ROOTS:
        top_fs = root + top.encode()
        try:
            top_st = os.lstat(top_fs)
        except OSError:
            continue
        if not stat.S_ISDIR(top_st.st_mode):
            continue
        stack = [(top_fs, 1)]
        while stack:
            directory, depth = stack.pop()
            try:
                it = os.scandir(directory)
            except OSError:
                continue
            with it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            deeper = max_depth is None or depth < max_depth
                            if deeper and entry.stat(follow_symlinks=False).st_dev == top_st.st_dev:
                                stack.append((entry.path, depth + 1))  # -xdev: stay on the root's file system
                            continue
                        if not entry.is_file(follow_symlinks=False):
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                        yield decode_path(entry.path[len(root) :]), st
