"""What packages put on disk and where package managers fetch from.

dpkg's per-package file lists, the file table of RPM headers in an SQLite
rpmdb, yum/dnf repository files, and portage's keyword/mask/USE settings.
"""

from __future__ import annotations

import configparser
import glob
import os
import sqlite3
from collections.abc import Iterator

from ..text import decode, fsdecode
from . import procfs
from .pkgdb import portage_entries
from .pkgformats import parse_rpm_header

DPKG_ADMINDIR = "/var/lib/dpkg"

# RPM header tags of the file table (rpmtag.h).
RPMTAG_NAME = 1000
RPMTAG_FILESIZES = 1028
RPMTAG_FILEMODES = 1030
RPMTAG_FILEDIGESTS = 1035
RPMTAG_FILEUSERNAME = 1039
RPMTAG_FILEGROUPNAME = 1040
RPMTAG_DIRINDEXES = 1116
RPMTAG_BASENAMES = 1117
RPMTAG_DIRNAMES = 1118
RPMTAG_LONGFILESIZES = 5008
RPMTAG_FILEDIGESTALGO = 5011
PGPHASHALGO_SHA256 = 8
_FILE_TAGS = frozenset(
    {
        RPMTAG_NAME,
        RPMTAG_FILESIZES,
        RPMTAG_FILEMODES,
        RPMTAG_FILEDIGESTS,
        RPMTAG_FILEUSERNAME,
        RPMTAG_FILEGROUPNAME,
        RPMTAG_DIRINDEXES,
        RPMTAG_BASENAMES,
        RPMTAG_DIRNAMES,
        RPMTAG_LONGFILESIZES,
        RPMTAG_FILEDIGESTALGO,
    }
)


def dpkg_file_lists(admindir: str = DPKG_ADMINDIR) -> Iterator[tuple[str, str]]:
    """(package, list file) for each info/<package>[:<arch>].list of a dpkg database."""
    info = f"{admindir}/info"
    try:
        names = sorted(os.listdir(info))
    except OSError:
        return
    for name in names:
        if name.endswith(".list"):
            yield fsdecode(name[: -len(".list")]).split(":", 1)[0], f"{info}/{name}"


def read_dpkg_list(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            return [decode(line) for line in f.read().split(b"\n") if line]
    except OSError:
        return []


def rpm_header_blobs(path: str) -> list[bytes]:
    """Header blobs of an SQLite rpmdb (rpm >= 4.16), read-only."""
    for mode in ("ro", "ro&immutable=1"):  # WAL databases need a -shm we may not be able to create
        try:
            db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True)
            try:
                return [bytes(b) for (b,) in db.execute("SELECT blob FROM Packages")]
            finally:
                db.close()
        except sqlite3.Error:
            continue
    return []


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def rpm_file_rows(blob: bytes) -> Iterator[dict]:
    """One row per file of one package header; malformed headers yield nothing."""
    try:
        h = parse_rpm_header(blob, _FILE_TAGS)
    except (ValueError, TypeError, IndexError):
        return
    names = _as_list(h.get(RPMTAG_BASENAMES))
    dirs = _as_list(h.get(RPMTAG_DIRNAMES))
    index = _as_list(h.get(RPMTAG_DIRINDEXES))
    sizes = _as_list(h.get(RPMTAG_LONGFILESIZES, h.get(RPMTAG_FILESIZES)))
    modes = _as_list(h.get(RPMTAG_FILEMODES))
    users, groups = _as_list(h.get(RPMTAG_FILEUSERNAME)), _as_list(h.get(RPMTAG_FILEGROUPNAME))
    digests = _as_list(h.get(RPMTAG_FILEDIGESTS))
    sha256 = _as_list(h.get(RPMTAG_FILEDIGESTALGO, [0]))[0] == PGPHASHALGO_SHA256
    for i, base in enumerate(names):
        if i >= len(index) or index[i] >= len(dirs):
            return
        yield {
            "package": h.get(RPMTAG_NAME),
            "path": dirs[index[i]] + base,
            "username": users[i] if i < len(users) else None,
            "groupname": groups[i] if i < len(groups) else None,
            "mode": f"{modes[i] & 0o7777:04o}" if i < len(modes) else None,
            "size": sizes[i] if i < len(sizes) else None,
            "sha256": (digests[i] or None) if sha256 and i < len(digests) else None,
        }


# --- yum / dnf ----------------------------------------------------------------

YUM_CONF = "/etc/yum.conf"
YUM_REPOS_DIR = "/etc/yum.repos.d"
_REPO_OPTIONS = ("name", "baseurl", "mirrorlist", "metalink", "enabled", "gpgcheck", "gpgkey")


def parse_repo_file(text: str) -> tuple[list[dict], dict[str, str]]:
    """(repository sections, [main] section) of a yum .repo or yum.conf file."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str.lower
    try:
        parser.read_string(text)
    except configparser.Error:
        return [], {}
    repos = []
    for section in parser.sections():
        if section == "main":
            continue
        values = parser[section]
        repos.append({option: values.get(option) for option in _REPO_OPTIONS})
    main = dict(parser["main"]) if parser.has_section("main") else {}
    return repos, main


# --- portage ------------------------------------------------------------------

PORTAGE_DB = "/var/db/pkg"
PORTAGE_ETC = "/etc/portage"


def portage_atom(atom: str) -> tuple[str, str]:
    """(package, version) of an atom as osquery splits it: the version keeps its
    comparison operators (">=1.2"), a lone leading "=" is dropped."""
    atom = atom.rstrip("/")
    ops = ""
    while atom[:1] in ("<", ">", "="):
        if not (ops == "" and atom[0] == "="):
            ops += atom[0]
        atom = atom[1:]
    slash = atom.find("/")
    for dash in (atom.rfind("-"), atom.rfind("-", 0, max(atom.rfind("-"), 0))):
        if slash < dash < len(atom) - 1 and atom[dash + 1].isdigit():
            return atom[:dash], ops + atom[dash + 1 :]
    return atom, ops


def read_portage_setting(path: str) -> list[list[str]]:
    """Non-comment lines split into words, from a file or every file of a directory."""
    files = [path]
    if os.path.isdir(path):
        files = [f"{path}/{n}" for n in sorted(os.listdir(path)) if not n.startswith(".")]
    lines = []
    for name in files:
        try:
            with open(name, "rb") as f:
                text = decode(f.read())
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words and not words[0].startswith("#"):
                lines.append(words)
    return lines


def portage_keyword_rows(etc: str = PORTAGE_ETC) -> list[dict]:
    """package.keywords (or package.accept_keywords), package.mask and package.unmask, joined by atom."""
    by_atom: dict[str, dict] = {}
    keyword_file = f"{etc}/package.keywords"
    if not os.path.exists(keyword_file):
        keyword_file = f"{etc}/package.accept_keywords"
    for words in read_portage_setting(keyword_file):
        package, version = portage_atom(words[0])
        keyword = " ".join(words[1:])
        by_atom[words[0]] = {"package": package, "version": version, "keyword": keyword, "mask": 0, "unmask": 0}
    for column, name in (("mask", "package.mask"), ("unmask", "package.unmask")):
        for words in read_portage_setting(f"{etc}/{name}"):
            row = by_atom.get(words[0])
            if row is None:
                package, version = portage_atom(words[0])
                row = by_atom[words[0]] = {
                    "package": package,
                    "version": version,
                    "keyword": "",
                    "mask": 0,
                    "unmask": 0,
                }
            row[column] = 1
    return list(by_atom.values())


def portage_use_rows(db: str = PORTAGE_DB) -> Iterator[dict]:
    """One row per USE flag an installed package was built with (/var/db/pkg/<cat>/<pkg>/USE)."""
    for category, entry in portage_entries(db):
        try:
            with open(f"{db}/{category}/{entry}/USE", "rb") as f:
                flags = decode(f.read()).split()
        except OSError:
            continue
        package, version = portage_atom(fsdecode(f"{category}/{entry}"))
        for flag in flags:
            yield {"package": package, "version": version, "use": flag}


def yum_source_rows(root: str = "") -> list[dict]:
    """Repositories of yum.conf and of every .repo file in its reposdir (default /etc/yum.repos.d)."""
    rows = []
    conf = procfs.read_or_none(root + YUM_CONF)
    repos, main = parse_repo_file(conf.decode("utf-8", "replace")) if conf else ([], {})
    rows.extend({**repo, "source": YUM_CONF} for repo in repos)
    repos_dir = main.get("reposdir", YUM_REPOS_DIR).split(",")[0].split()[0]
    for path in sorted(glob.glob(glob.escape(root + repos_dir) + "/*.repo")):
        data = procfs.read_or_none(path)
        if data is None:
            continue
        repos, _ = parse_repo_file(data.decode("utf-8", "replace"))
        rows.extend({**repo, "source": path[len(root) :]} for repo in repos)
    return rows
