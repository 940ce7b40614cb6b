"""The system trust stores: which files hold trusted certificates, and the certificates in them.

Which paths a certificate is reported under: every distinct path of a
regular file (or a link to one) in the store directories and bundles gives
its certificates once, so a Debian CA shows up under /etc/ssl/certs/X.pem
(a link), under /usr/share/ca-certificates/mozilla/X.crt (its target) and in
the ca-certificates.crt bundle. The OpenSSL hash links (``5ad8a5d6.0``,
made by c_rehash for lookups by subject) are left out when their target is
listed under another path, which is always so in a store that c_rehash
made. A directory reached twice (a link to a directory already walked, or a
loop) is walked once; links that loop or dangle are skipped.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator

from . import x509info
from .safefile import read_regular

# Where distributions keep trusted certificates: Debian/Ubuntu, Fedora/RHEL, SUSE, Alpine, Arch.
STORE_DIRS = (
    "/etc/ssl/certs",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust/extracted",
    "/etc/pki/ca-trust/source/anchors",
    "/usr/share/pki/ca-trust-source",
    "/etc/ca-certificates/trust-source",
)


BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/cert.pem",
)


_HASH_LINK = re.compile(r"^[0-9a-f]{8}\.r?[0-9]+$")


_MAX_DEPTH = 8


_MAX_FILE = 64 << 20  # larger files are not certificate stores


def store_paths(dirs: Iterable[str] = STORE_DIRS, bundles: Iterable[str] = BUNDLES) -> list[str]:
    """Every file of the trust stores, each path once, hash links to files already listed left out."""
    found: dict[str, bool] = {}  # path -> is a hash link
    for bundle in bundles:
        if _is_file(bundle):
            found.setdefault(bundle, False)
    walked: set[tuple[int, int]] = set()
    for directory in dirs:
        _walk(directory, found, walked, 0)
    targets = {os.path.realpath(p) for p, is_hash in found.items() if not is_hash}
    return [p for p, is_hash in found.items() if not is_hash or os.path.realpath(p) not in targets]


def _walk(directory: str, found: dict[str, bool], walked: set[tuple[int, int]], depth: int) -> None:
    try:
        st = os.stat(directory)
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    if (st.st_dev, st.st_ino) in walked or depth > _MAX_DEPTH:
        return
    walked.add((st.st_dev, st.st_ino))
    for entry in entries:
        try:
            if entry.is_dir():
                _walk(entry.path, found, walked, depth + 1)
            elif entry.is_file():
                found.setdefault(entry.path, entry.is_symlink() and bool(_HASH_LINK.match(entry.name)))
        except OSError:
            continue  # a link loop (ELOOP) or an entry that vanished


def _is_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_store_file(path: bytes | str) -> bytes | None:
    """A regular file's content, or None; never blocks on a FIFO or reads a device."""
    return read_regular(path, max_bytes=_MAX_FILE)


def certificate_rows(paths: Iterable[tuple[str, bytes | str]]) -> Iterator[dict]:
    """Rows for (shown path, path to open) pairs; a certificate met again is parsed once."""
    parsed: dict[bytes, dict | None] = {}
    for shown, real in paths:
        data = read_store_file(real)
        if not data:
            continue
        for der in x509info.split_certificates(data):
            if der not in parsed:
                parsed[der] = x509info.certificate_fields(der)
            fields = parsed[der]
            if fields is not None:
                yield {**fields, "path": shown}
