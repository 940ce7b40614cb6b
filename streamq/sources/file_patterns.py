"""What the file source watches and what it reports about a changed file.

osquery's path patterns (``%`` within one level, ``%%`` below), the smallest
set of roots to watch for them, excludes, and the stat and hash columns of a
file_events row. Pure functions over paths: no watchdog, no event loop.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass

from ..text import encode_path

_HASH_CHUNK = 1 << 20
_WATCH_SYSCTL = "/proc/sys/fs/inotify/max_user_watches"


# -- patterns --------------------------------------------------------------------------------


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """osquery's path pattern as a regex over a whole path: ``%%`` spans levels, ``%`` does not."""
    parts = []
    for i, piece in enumerate(pattern.split("%%")):
        if i:
            parts.append(".*")
        parts.append("[^/]*".join(re.escape(p) for p in piece.split("%")))
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class Watch:
    """One configured pattern: the directories it needs watched and the paths it keeps."""

    pattern: str
    base: str  # directory to watch; may hold single-level '%' to expand
    recursive: bool
    regex: re.Pattern[str]


def plan(pattern: str) -> Watch:
    """Where ``pattern`` needs an inotify watch; ValueError for a relative pattern."""
    if not pattern.startswith("/"):
        raise ValueError(f"file pattern {pattern!r} is not an absolute path")
    if "%%" in pattern:
        base = pattern[: pattern.index("%")].rsplit("/", 1)[0] or "/"
        return Watch(pattern, base, True, pattern_regex(pattern))
    if pattern.endswith("/") or ("%" not in pattern and os.path.isdir(encode_path(pattern))):
        keep = pattern.rstrip("/") + "/%"  # a directory stands for its entries
    else:
        keep = pattern
    base = keep.rsplit("/", 1)[0] or "/"
    return Watch(pattern, base, False, pattern_regex(keep))


def expand_base(base: str) -> list[str]:
    """The existing directories a base names (several when it holds '%')."""
    if "%" not in base:
        return [base]
    try:
        from ..host.globbing import expand
    except ImportError:  # pragma: no cover - the file table's helper is optional here
        return []
    return [p for p in expand(base, dirs_only=True) if pattern_regex(base).fullmatch(p)]


def minimal_roots(roots: set[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Drop roots a recursive root already covers, so every event arrives exactly once."""
    recursive = {d for d, r in roots if r}
    out = []
    for d, r in sorted(roots):
        if not r and d in recursive:
            continue
        covered = any(d != top and d.startswith(top.rstrip("/") + "/") for top in recursive)
        if not covered:
            out.append((d, r))
    return out


class Excludes:
    """``exclude`` entries: patterns, or exact paths that also exclude everything below them."""

    def __init__(self, entries: list[str]) -> None:
        self.exact = tuple(e.rstrip("/") or "/" for e in entries if "%" not in e)
        self.regexes = tuple(pattern_regex(e) for e in entries if "%" in e)

    def __call__(self, path: str) -> bool:
        for e in self.exact:
            if path == e or path.startswith(e + "/"):
                return True
        return any(r.fullmatch(path) for r in self.regexes)


# -- stat and hashes -------------------------------------------------------------------------


def stat_columns(path: bytes) -> tuple[dict, os.stat_result | None]:
    """The row's stat columns for ``path`` (not following a symlink); empty when it is gone."""
    try:
        st = os.lstat(path)
    except OSError:
        return {}, None
    return {
        "inode": st.st_ino,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mode": f"{st.st_mode & 0o7777:04o}",
        "size": st.st_size,
        "atime": int(st.st_atime),
        "mtime": int(st.st_mtime),
        "ctime": int(st.st_ctime),
    }, st


def hash_file(path: bytes, algorithms: list[str], max_bytes: int) -> dict:
    """``hashed`` and the requested digests of a regular file; hashed -1 if too big or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {"hashed": -1}
    digests = [hashlib.new(a) for a in algorithms]
    total = 0
    try:
        with os.fdopen(fd, "rb", buffering=0) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return {"hashed": -1}
            while chunk := f.read(_HASH_CHUNK):
                total += len(chunk)
                if total > max_bytes:  # it grew past the cap while we read
                    return {"hashed": -1}
                for d in digests:
                    d.update(chunk)
    except OSError:
        return {"hashed": -1}
    row = {a: d.hexdigest() for a, d in zip(algorithms, digests, strict=True)}
    row["hashed"] = 1
    return row


def watch_limit_message(path: str) -> str:
    try:
        with open(_WATCH_SYSCTL) as f:
            limit = f.read().strip()
    except OSError:
        limit = "?"
    return f"inotify watch limit reached at {path}: raise sysctl fs.inotify.max_user_watches (now {limit})"
