"""certificates: every X.509 certificate in the system trust stores, or in the files a query names.

Which paths a certificate is reported under: every distinct path of a
regular file (or a link to one) in the store directories and bundles gives
its certificates once, so a Debian CA shows up under /etc/ssl/certs/X.pem
(a link), under /usr/share/ca-certificates/mozilla/X.crt (its target) and in
the ca-certificates.crt bundle. The OpenSSL hash links (``5ad8a5d6.0``,
made by c_rehash for lookups by subject) are left out when their target is
listed under another path, which is always so in a store that c_rehash
made. A directory reached twice (a link to a directory already walked, or a
loop) is walked once; links that loop or dangle are skipped.

``WHERE path = '...'`` reads just those files, store or not, hash link or not.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator

from ..host.safefile import read_regular
from ..sql.schema import DATETIME, INTEGER, TEXT, Column, table
from ..text import decode_path, encode_path
from ._common import lazy_module

x509info = lazy_module("streamq.host.x509info")

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


@table(
    "certificates",
    "X.509 certificates in the system trust stores (directories and CA bundles), or in the files named by path.",
    [
        Column("common_name", TEXT, "The first common name (CN) of the subject."),
        Column("subject", TEXT, "Subject name as OpenSSL's one-line form, e.g. /C=US/O=Example/CN=Example Root."),
        Column("subject2", TEXT, "Subject name as OpenSSL's RFC 2253-like form, e.g. C = US, O = Example."),
        Column("issuer", TEXT, "Issuer name in the same form as subject."),
        Column("issuer2", TEXT, "Issuer name in the same form as subject2."),
        Column("ca", INTEGER, "1 if the certificate may act as a certificate authority (OpenSSL's rules), else 0."),
        Column("self_signed", INTEGER, "1 if the certificate names itself as its issuer and may sign certificates."),
        Column("not_valid_before", DATETIME, "Start of the validity period, unix seconds."),
        Column("not_valid_after", DATETIME, "End of the validity period, unix seconds."),
        Column("signing_algorithm", TEXT, "Signature algorithm, by OpenSSL's long name, e.g. sha256WithRSAEncryption."),
        Column("key_algorithm", TEXT, "Public key algorithm, by OpenSSL's long name, e.g. rsaEncryption."),
        Column("key_strength", TEXT, "Key size in bits for RSA and DSA keys, or the curve name for EC keys."),
        Column("key_usage", TEXT, "Key usage extension as comma-separated words; NULL without the extension."),
        Column("subject_key_id", TEXT, "Subject key identifier, lower-case hex."),
        Column("authority_key_id", TEXT, "Key identifier of the issuing authority, lower-case hex."),
        Column("sha1", TEXT, "SHA-1 fingerprint of the DER certificate, lower-case hex."),
        Column("path", TEXT, "File the certificate was read from; = reads that file.", additional=True),
        Column("serial", TEXT, "Serial number, upper-case hex."),
    ],
    examples=(
        "SELECT common_name, not_valid_after, path FROM certificates WHERE ca = 1 LIMIT 5",
        "SELECT common_name, sha1 FROM certificates WHERE path = '/etc/ssl/certs/ca-certificates.crt'",
    ),
    cost=500,
)
def gen_certificates(ctx):
    wanted = ctx.eq("path")
    if wanted is not None:
        pairs = [(p, encode_path(p)) for p in wanted if isinstance(p, str)]
    else:
        pairs = [(decode_path(p), p) for p in store_paths()]
    yield from certificate_rows(pairs)
