"""osquery's path patterns: SQL LIKE text read as a file-system glob.

``%`` matches any run of characters within one path level, ``_`` one
character, and a level that is (or ends with) ``%%`` matches everything below
it, at any depth. So ``/etc/%`` lists /etc, ``/etc/%.conf`` filters that
listing, ``/home/%/.ssh/%`` lists every user's .ssh directory, and
``/etc/%%`` walks the whole tree. Unlike glob(3), names starting with a dot
match too: SQL's ``%`` has no hidden-file rule, and the hidden files are the
ones a security query wants to see.

Only the directories a pattern needs are read: literal levels are joined
without a listing, and an unreadable or missing directory simply matches
nothing. Paths go in and come out as SQL text (:mod:`streamq.text`); a
``root`` prefix (``/proc/<pid>/root``) makes the walk see another mount
namespace while the paths stay as that namespace names them.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator

from ..text import decode_path, encode_path

# osquery stops its recursive globbing after 64 levels; symlinked directories are never followed there.
MAX_DEPTH = 64


def is_pattern(text: str) -> bool:
    """Whether ``text`` holds a LIKE wildcard (otherwise it names one path)."""
    return "%" in text or "_" in text


def join(parent: str, name: str) -> str:
    """``parent/name`` without a doubled slash (``/dev/`` + ``null`` is ``/dev/null``)."""
    if not parent:
        return name
    return parent + name if parent.endswith("/") else f"{parent}/{name}"


def fs_path(path: str, root: bytes = b"") -> bytes:
    """The bytes to hand the OS for the SQL text ``path`` seen from ``root``."""
    raw = encode_path(path)
    return root + raw if root and raw.startswith(b"/") else raw


def expand(pattern: str, *, root: bytes = b"", dirs_only: bool = False) -> Iterator[str]:
    """Existing paths (as SQL text) that ``pattern`` matches; each at most once.

    A pattern ending in ``/`` matches directories only and keeps that slash on
    what it yields, so the result still satisfies SQLite's own LIKE check.
    """
    trailing = len(pattern) > 1 and pattern.endswith("/")
    dirs_only = dirs_only or trailing
    levels = [level for level in pattern.split("/") if level]
    start = "/" if pattern.startswith("/") else ""
    seen: set[str] = set()
    for path in _match(start, levels, root):
        if path in seen or not path:
            continue
        seen.add(path)
        if dirs_only and not _is_dir(fs_path(path, root)):
            continue
        yield path + "/" if trailing else path


def _match(prefix: str, levels: list[str], root: bytes) -> Iterator[str]:
    """Depth-first over the pattern's levels; literal runs cost no listing."""
    i = 0
    while i < len(levels) and not is_pattern(levels[i]):
        prefix = join(prefix, levels[i])
        i += 1
    if i == len(levels):
        if prefix and os.path.lexists(fs_path(prefix, root)):
            yield prefix
        return
    level, last = levels[i], i == len(levels) - 1
    if level == "%%":
        for path, is_dir in _descendants(prefix or ".", root):
            if last:
                yield _relative(path, prefix)
            elif is_dir:
                yield from _match(_relative(path, prefix), levels[i + 1 :], root)
        return
    recursive = last and level.endswith("%%")
    regex = _compile(level)
    for name, is_dir in _listing(prefix or ".", root):
        if not regex.fullmatch(name):
            continue
        path = join(prefix, name)
        if last:
            yield path
            if recursive and is_dir:
                yield from (p for p, _ in _descendants(path, root))
        elif is_dir:
            yield from _match(path, levels[i + 1 :], root)


def _relative(path: str, prefix: str) -> str:
    # Walks of a relative pattern start at "."; report them as the pattern named them.
    return path[2:] if not prefix and path.startswith("./") else path


def _compile(level: str) -> re.Pattern[str]:
    parts = []
    for ch in level:
        if ch == "%":
            if not parts or parts[-1] != ".*":
                parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _listing(directory: str, root: bytes) -> Iterator[tuple[str, bool]]:
    """(name, is a directory, symlinks followed) for each entry; nothing if unreadable."""
    try:
        with os.scandir(fs_path(directory, root)) as entries:
            found = []
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                found.append((decode_path(entry.name), is_dir))
    except OSError:
        return
    yield from found


def _descendants(top: str, root: bytes) -> Iterator[tuple[str, bool]]:
    """Every path below ``top`` (not ``top`` itself), never through a symlinked directory."""
    stack = [(top, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(fs_path(directory, root)) as it:
                entries = []
                for entry in it:
                    try:
                        real_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        real_dir = False
                    entries.append((join(directory, decode_path(entry.name)), real_dir))
        except OSError:
            continue
        for path, real_dir in entries:
            yield path, real_dir
            if real_dir and depth + 1 < MAX_DEPTH:
                stack.append((path, depth + 1))


def _is_dir(path: bytes) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False
