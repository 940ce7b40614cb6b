"""Readers of the system package managers' databases on disk: APT sources, rpmdb.sqlite, portage's /var/db/pkg.

(Python and npm packages: :mod:`streamq.host.langpkgs`.)

They take paths (and users' homes) as arguments, so tests point them at tmp
trees; the byte-level parsing lives in :mod:`streamq.host.pkgformats`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from ..text import decode, fsdecode
from . import dirs, procfs
from .pkgformats import (
    RPMTAG_ARCH,
    RPMTAG_EPOCH,
    RPMTAG_GROUP,
    RPMTAG_INSTALLTIME,
    RPMTAG_LONGSIZE,
    RPMTAG_NAME,
    RPMTAG_RELEASE,
    RPMTAG_SHA1HEADER,
    RPMTAG_SIZE,
    RPMTAG_SOURCERPM,
    RPMTAG_VENDOR,
    RPMTAG_VERSION,
    apt_list_prefix,
    parse_release,
    parse_rpm_header,
    split_portage_atom,
)

APT_LISTS = "/var/lib/apt/lists"
RPM_TAGS = frozenset(
    (
        RPMTAG_NAME,
        RPMTAG_VERSION,
        RPMTAG_RELEASE,
        RPMTAG_EPOCH,
        RPMTAG_SOURCERPM,
        RPMTAG_SIZE,
        RPMTAG_LONGSIZE,
        RPMTAG_SHA1HEADER,
        RPMTAG_ARCH,
        RPMTAG_INSTALLTIME,
        RPMTAG_VENDOR,
        RPMTAG_GROUP,
    )
)


def apt_source_files(prefix: str = "", etc: str = "/etc/apt") -> list[str]:
    """The sources files apt reads, as paths without ``prefix``."""
    found = [f"{etc}/sources.list"] if os.path.isfile(f"{prefix}{etc}/sources.list") else []
    try:
        names = sorted(os.listdir(f"{prefix}{etc}/sources.list.d"))
    except OSError:
        names = []
    found += [f"{etc}/sources.list.d/{n}" for n in names if n.endswith((".list", ".sources"))]
    return found


def apt_source_row(entry, source: str, lists_dir: str = APT_LISTS) -> dict | None:
    """One apt_sources row for a configured entry, enriched from its cached Release file."""
    base_uri = entry.uri.rstrip("/")
    _scheme, sep, rest = base_uri.partition("://")
    if not sep or not rest:
        return None
    release: dict[str, str] = {}
    list_prefix = apt_list_prefix(entry.uri, entry.suite)
    for suffix in ("_InRelease", "_Release"):
        data = procfs.read_or_none(f"{lists_dir}/{list_prefix}{suffix}") if list_prefix else None
        if data is not None:
            release = parse_release(data)
            break
    return {
        "name": f"{rest} {entry.suite}",
        "source": source,
        "base_uri": base_uri,
        "release": release.get("Codename"),
        "version": release.get("Version"),
        "maintainer": release.get("Origin"),
        "components": release.get("Components") or " ".join(entry.components) or None,
        "architectures": release.get("Architectures") or entry.options.get("arch", "").replace(",", " ") or None,
    }


RPMDB_DIRS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")


def rpm_databases(prefix: str = "") -> list[str]:
    """The SQLite rpm databases under ``prefix``, each once (one often has two paths, through a symlink)."""
    found, seen = [], set()
    for d in RPMDB_DIRS:
        path = f"{prefix}{d}/rpmdb.sqlite"
        try:  # compared by inode: realpath would resolve /proc/<pid>/root to our own root
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            found.append(path)
    return found


def _rpm_blobs(path: str, in_memory: bool) -> list[bytes]:
    import sqlite3

    if in_memory:
        data = procfs.read_or_none(path)
        if data is None:
            return []
        db = sqlite3.connect(":memory:")
        try:
            db.deserialize(data)
            return [b for (b,) in db.execute("SELECT blob FROM Packages")]
        except sqlite3.Error:
            return []
        finally:
            db.close()
    for mode in ("ro", "ro&immutable=1"):  # WAL databases need a -shm we may not be able to create
        try:
            db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True)
            try:
                return [b for (b,) in db.execute("SELECT blob FROM Packages")]
            finally:
                db.close()
        except sqlite3.Error:
            continue
    return []


def rpm_rows(path: str, *, in_memory: bool = False):
    """Rows of an SQLite rpmdb (rpm >= 4.16). Unreadable or corrupt headers are skipped.

    ``in_memory``: read the file and hand SQLite the bytes. Needed for a path
    under /proc/<pid>/root: SQLite resolves the symlinks of a path it opens, and
    that one resolves to our own root, not the process's.
    """
    for blob in _rpm_blobs(path, in_memory):
        try:
            h = parse_rpm_header(bytes(blob), RPM_TAGS)
        except (ValueError, TypeError, IndexError):
            continue
        if RPMTAG_NAME not in h:
            continue  # not a package header (gpg-pubkey pseudo-packages do have a name and stay)
        sha1 = h.get(RPMTAG_SHA1HEADER)
        yield {
            "name": h.get(RPMTAG_NAME),
            "version": h.get(RPMTAG_VERSION),
            "release": h.get(RPMTAG_RELEASE),
            "source": h.get(RPMTAG_SOURCERPM),
            "size": _first_int(h.get(RPMTAG_LONGSIZE, h.get(RPMTAG_SIZE))),
            "sha1": sha1 if isinstance(sha1, str) else None,
            "arch": h.get(RPMTAG_ARCH),
            "epoch": _first_int(h.get(RPMTAG_EPOCH)),
            "install_time": _first_int(h.get(RPMTAG_INSTALLTIME)),
            "vendor": h.get(RPMTAG_VENDOR),
            "package_group": h.get(RPMTAG_GROUP),
        }


def _first_int(value) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) else None


def portage_rows(db: str, world_file: str):
    """Rows for every <category>/<package>-<version> directory of a portage database."""
    world_data = procfs.read_or_none(world_file)
    world = None
    if world_data is not None:
        world = {
            split_portage_atom(line.split()[0])[0]
            for line in decode(world_data).splitlines()
            if line.strip() and not line.startswith("#")
        }
    for category, entry in portage_entries(db):
        pkg_dir = f"{db}/{category}/{entry}"
        if not os.path.isdir(pkg_dir):
            continue
        package, version = split_portage_atom(fsdecode(f"{category}/{entry}"))
        yield {
            "package": package,
            "version": version,
            "slot": _small_text(f"{pkg_dir}/SLOT"),
            "build_time": procfs.int_or_none(_small_text(f"{pkg_dir}/BUILD_TIME")),
            "repository": _small_text(f"{pkg_dir}/repository"),
            "eapi": procfs.int_or_none(_small_text(f"{pkg_dir}/EAPI")),
            "size": procfs.int_or_none(_small_text(f"{pkg_dir}/SIZE")),
            "world": None if world is None else int(package in world),
        }


def portage_entries(db: str) -> Iterator[tuple[str, str]]:
    """(category, entry) of every <category>/<package>-<version> of a portage database, sorted;
    nothing for a database or category that cannot be listed."""
    for category in dirs.names(db):
        for entry in dirs.names(f"{db}/{category}"):
            yield category, entry


def _small_text(path: str) -> str | None:
    data = procfs.read_or_none(path)
    return decode(data).strip() if data is not None else None
