"""Language package managers' installs: Python distributions in site directories, npm packages in node_modules.

Readers that take paths (and users' homes) as arguments, so tests point them
at tmp trees; the core metadata parser is in :mod:`streamq.host.pkgformats`.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Iterable

from ..text import encode_path, fsdecode
from . import procfs
from .pkgformats import parse_core_metadata

PYTHON_SITE_GLOBS = (
    "/usr/local/lib/python*/dist-packages",
    "/usr/local/lib/python*/site-packages",
    "/usr/lib/python*/dist-packages",
    "/usr/lib/python*/site-packages",
)


NODE_LIB_DIRS = ("/usr/local/lib", "/opt/homebrew/lib", "/usr/lib")


NPM_DEFAULT_MAX_DEPTH = 100


Home = tuple[int, str]


def python_site_dirs(
    prefix: str = "", *, with_system: bool = True, homes: Iterable[Home] = ()
) -> list[tuple[str, int | None]]:
    """(site directory, owning uid or None) for the system Pythons, this interpreter and users' ~/.local."""
    candidates: list[tuple[str, int | None]] = []
    if with_system:
        patterns = list(PYTHON_SITE_GLOBS)
        if not prefix:  # this interpreter's own directories (its venv, pyenv...) exist only in our namespace
            patterns += [glob.escape(p) for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
            patterns += [f"{glob.escape(base)}/lib/python*/site-packages" for base in {sys.prefix, sys.base_prefix}]
        candidates += [(d, None) for p in patterns for d in sorted(glob.glob(prefix + p))]
    for uid, home in homes:
        candidates += [
            (d, uid) for d in sorted(glob.glob(f"{prefix}{glob.escape(home)}/.local/lib/python*/site-packages"))
        ]
    seen, sites = set(), []
    for directory, uid in candidates:
        real = os.path.realpath(directory)
        if real not in seen and os.path.isdir(directory):
            seen.add(real)
            sites.append((directory[len(prefix) :].rstrip("/") or "/", uid))
    return sites


def site_owner(directory: str) -> int | None:
    """Who owns a site directory named in a query: a user's own site directory, or root's."""
    try:
        return os.stat(encode_path(directory)).st_uid
    except OSError:
        return None


def python_packages_in(site: str) -> list[dict]:
    """One row per *.dist-info / *.egg-info in a site directory (without directory and uid)."""
    try:
        names = sorted(os.listdir(site))
    except OSError:
        return []
    site = site.rstrip("/")  # "dir/" from a WHERE clause must not give "dir//x.dist-info"
    rows = []
    for name in names:
        if name.endswith(".dist-info"):
            meta = f"{site}/{name}/METADATA"
        elif name.endswith(".egg-info"):
            # distutils wrote PKG-INFO as a plain file named *.egg-info; setuptools writes a directory
            meta = f"{site}/{name}/PKG-INFO" if os.path.isdir(f"{site}/{name}") else f"{site}/{name}"
        else:
            continue
        head = _read_header_block(meta)
        if head is None:
            continue
        fields = parse_core_metadata(head)
        rows.append(
            {
                "name": fields.get("name"),
                "version": fields.get("version"),
                "summary": fields.get("summary") or None,
                "author": fields.get("author") or fields.get("author-email") or None,
                "license": fields.get("license") or fields.get("license-expression") or None,
                "path": f"{site}/{fsdecode(name)}",
            }
        )
    return rows


def _read_header_block(path: str, chunk: int = 8192) -> bytes | None:
    """The bytes of a metadata file up to its first blank line (the long description is skipped)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = b""
        while b"\n\n" not in data:
            more = os.read(fd, chunk)
            if not more:
                break
            data += more
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def npm_site_dirs(prefix: str = "", homes: Iterable[Home] = ()) -> list[str]:
    """Directories with a global node_modules: the system lib dirs, ~/.npm-global/lib and nvm's."""
    patterns = list(NODE_LIB_DIRS)
    for _uid, home in homes:
        h = glob.escape(home)
        patterns += [f"{h}/.npm-global/lib", f"{h}/.nvm/versions/node/*/lib"]
    found = dict.fromkeys(
        d[len(prefix) :] for p in patterns for d in sorted(glob.glob(prefix + p)) if os.path.isdir(d + "/node_modules")
    )
    return list(found)


def npm_packages_in(site: str, max_depth: int = NPM_DEFAULT_MAX_DEPTH) -> list[dict]:
    """Packages under ``site``/node_modules (scoped ones too), descending into nested node_modules."""
    rows = []
    stack = [(site.rstrip("/") or "/", 0)]
    visited: set[tuple[int, int]] = set()
    while stack:
        directory, depth = stack.pop()
        try:
            st = os.stat(directory)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in visited:  # a symlink loop back up the tree
            continue
        visited.add((st.st_dev, st.st_ino))
        for pkg_dir in _node_module_dirs(f"{directory}/node_modules"):
            manifest = f"{pkg_dir}/package.json"
            row = npm_package_row(procfs.read_or_none(manifest))
            if row is None:
                continue
            row["path"] = fsdecode(manifest)
            row["depth"] = depth
            row["max_depth"] = max_depth
            rows.append(row)
            if (max_depth < 0 or depth < max_depth) and os.path.isdir(f"{pkg_dir}/node_modules"):
                stack.append((pkg_dir, depth + 1))
    return rows


def _node_module_dirs(node_modules: str) -> list[str]:
    try:
        names = sorted(os.listdir(node_modules))
    except OSError:
        return []
    dirs = []
    for name in names:
        if name.startswith("@"):
            try:
                dirs += [f"{node_modules}/{name}/{sub}" for sub in sorted(os.listdir(f"{node_modules}/{name}"))]
            except OSError:
                continue
        elif not name.startswith("."):
            dirs.append(f"{node_modules}/{name}")
    return dirs


def npm_package_row(data: bytes | None) -> dict | None:
    """name, version, description, author, license, homepage of one package.json, or None."""
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    author = doc.get("author")
    if isinstance(author, dict):
        author = author.get("name")
    license_ = doc.get("license")
    if isinstance(license_, dict):
        license_ = license_.get("type") or license_.get("url")
    elif license_ is None and isinstance(doc.get("licenses"), list):
        license_ = (
            " OR ".join(x["type"] for x in doc["licenses"] if isinstance(x, dict) and isinstance(x.get("type"), str))
            or None
        )
    return {
        "name": _str_or_none(doc.get("name")),
        "version": _str_or_none(doc.get("version")),
        "description": _str_or_none(doc.get("description")),
        "author": _str_or_none(author),
        "license": _str_or_none(license_),
        "homepage": _str_or_none(doc.get("homepage")),
    }


def _str_or_none(value) -> str | None:
    return value if isinstance(value, str) else None
