"""Files that configure or record what users do: shell histories, authorized_keys, crontabs, sudoers.

Pure parsers over bytes, plus the readers that find the files (a crontab
directory, sudoers' include tree). Files in users' homes are read with
:func:`streamq.host.safefile.read_user_file`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from ..text import decode, decode_path, encode_path
from . import procfs


def text_lines(data: bytes) -> list[str]:
    """The file's lines as text, without the \r of CRLF line ends."""
    return [decode(line.rstrip(b"\r")) for line in data.split(b"\n")]


HISTORY_FILES = (".bash_history", ".zsh_history", ".zhistory", ".history", ".sh_history")


_BASH_TIME = re.compile(r"^#(\d+)$")  # written before each command when HISTTIMEFORMAT is set


_ZSH_EXTENDED = re.compile(r"^: {0,10}(\d{1,11}):\d+;(.*)$", re.DOTALL)  # ": <start>:<elapsed>;<command>"


_ZSH_META = 0x83


def unmetafy(data: bytes) -> bytes:
    """zsh writes bytes 0x83-0xa2 (and NUL) as 0x83 followed by the byte XOR 0x20."""
    if _ZSH_META not in data:
        return data
    out = bytearray()
    it = iter(data)
    for b in it:
        out.append((next(it, 0x20) ^ 0x20) if b == _ZSH_META else b)
    return bytes(out)


def parse_shell_history(data: bytes) -> Iterator[tuple[int | None, str]]:
    """(time, command) pairs of a bash, zsh or sh history file; time is None when not recorded."""
    lines = text_lines(data)
    pending: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if pending is None and (m := _BASH_TIME.match(line)):
            pending = int(m.group(1))
            continue
        if pending is not None:
            yield pending, line
            pending = None
            continue
        m = _ZSH_EXTENDED.match(line)
        if m is None:
            yield None, line
            continue
        command = m.group(2)
        while command.endswith("\\") and i < len(lines):  # zsh keeps multi-line commands as \-newline
            command = command[:-1] + "\n" + lines[i]
            i += 1
        yield int(m.group(1)), command


AUTHORIZED_KEYS_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")


# Key types as sshd names them; anything before one of these on a line is the options field.
_KEY_TYPE = re.compile(r"(ssh-|ecdsa-|sk-|rsa-sha2-|x509v3-|pgp-|spki-)[\w@.+-]*$")


def _split_options(line: str) -> tuple[str, str]:
    """Split off the leading options field, whose quoted values may contain spaces."""
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in " \t" and not quoted:
            break
        i += 1
    return line[:i], line[i:].lstrip()


def parse_authorized_key(line: str) -> tuple[str | None, str | None, str | None, str | None] | None:
    """(options, algorithm, key, comment) of one authorized_keys line, None for blanks and comments."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    options = None
    first = line.split(None, 1)[0]
    if not _KEY_TYPE.match(first) and not first.isdigit():
        options, line = _split_options(line)
    parts = line.split(None, 2)
    if parts and parts[0].isdigit():
        # SSH protocol 1: bits, exponent, modulus, comment.
        key = " ".join(parts[:3]) if len(parts) >= 3 else line
        rest = line.split(None, 3)
        return options, None, key, rest[3].strip() if len(rest) > 3 else None
    algorithm = parts[0] if parts else None
    key = parts[1] if len(parts) > 1 else None
    comment = parts[2].strip() if len(parts) > 2 else None
    return options, algorithm, key, comment or None


SYSTEM_CRONTAB = "/etc/crontab"


CRON_DIRS = ("/etc/cron.d", "/var/spool/cron", "/var/spool/cron/crontabs")


_CRON_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")  # SHELL=/bin/sh, MAILTO = root


def parse_crontab(data: bytes) -> Iterator[tuple[str | None, ...]]:
    """(event, minute, hour, day_of_month, month, day_of_week, command) per job line.

    As in osquery, the command of a system crontab (/etc/crontab, /etc/cron.d)
    starts with the user field: the format is the same up to there.
    """
    for line in text_lines(data):
        line = line.strip()
        if not line or line.startswith("#") or _CRON_ENV.match(line):
            continue
        if line.startswith("@"):
            parts = line.split(None, 1)
            if len(parts) == 2:
                yield (parts[0], None, None, None, None, None, parts[1])
            continue
        parts = line.split(None, 5)
        if len(parts) == 6:
            yield (None, *parts)


def crontab_files(root: str = "") -> list[str]:
    """Crontab paths as the (possibly namespaced) system sees them."""
    paths = [SYSTEM_CRONTAB]
    for directory in CRON_DIRS:
        try:
            names = sorted(os.listdir(root + directory))
        except OSError:
            continue
        paths += [f"{directory}/{decode_path(n)}" for n in names if os.path.isfile(os.path.join(root + directory, n))]
    return paths


SUDOERS = "/etc/sudoers"


_MAX_NEST = 128  # sudoers(5): at most 128 nested include files


_INCLUDE = re.compile(r"^([#@])(include|includedir)\s+(.+)$")


def _logical_lines(data: bytes) -> Iterator[str]:
    """Lines with backslash-newline continuations joined, as sudo reads them."""
    held = ""
    for line in text_lines(data):
        if line.endswith("\\"):
            held += line[:-1]
            continue
        yield held + line
        held = ""
    if held:
        yield held


def _include_path(raw: str, source: str) -> str:
    path = raw.strip()
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1].replace('\\"', '"')
    if "%h" in path:  # sudoers(5): %h is the short host name
        import socket

        path = path.replace("%h", socket.gethostname().split(".")[0])
    return path if path.startswith("/") else os.path.join(os.path.dirname(source), path)


def sudoers_rows(path: str, *, depth: int = 1, seen: frozenset[str] = frozenset()) -> Iterator[tuple]:
    """(source, header, rule_details) for each rule of ``path`` and of the files it includes.

    An include gets its own row (header ``include``/``includedir``, as osquery
    writes them; ``@include``/``@includedir`` keep their ``@``) before the
    included rules.
    """
    if depth > _MAX_NEST or path in seen:
        return
    data = procfs.read_or_none(encode_path(path))
    if data is None:
        return
    seen = seen | {path}
    for line in _logical_lines(data):
        line = line.strip()
        m = _INCLUDE.match(line)
        if m:
            sigil, directive, target = m.groups()
            target = _include_path(target, path)
            yield (path, directive if sigil == "#" else sigil + directive, target)
            if directive == "include":
                yield from sudoers_rows(target, depth=depth + 1, seen=seen)
            else:
                yield from _sudoers_dir(target, depth + 1, seen)
            continue
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        yield (path, parts[0], " ".join(parts[1:]))


def _sudoers_dir(directory: str, depth: int, seen: frozenset[str]) -> Iterator[tuple]:
    try:
        names = sorted(os.listdir(encode_path(directory)))
    except OSError:
        return
    for raw in names:
        name = decode_path(raw)
        # sudoers(5): files whose names end in ~ or contain a dot are skipped (editor backups, .dpkg-old).
        if "." in name or name.endswith("~"):
            continue
        full = os.path.join(directory, name)
        if os.path.isfile(encode_path(full)):
            yield from sudoers_rows(full, depth=depth, seen=seen)
