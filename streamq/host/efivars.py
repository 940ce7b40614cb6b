"""UEFI variables as Linux shows them in /sys/firmware/efi/efivars.

Each file is a 4-byte little-endian attribute word followed by the variable's
data. The signature databases (db, dbx) are concatenated EFI_SIGNATURE_LISTs
(UEFI spec 32.4.1): a 28-byte header (type GUID, list size, header size,
signature size), an optional header, then entries of a 16-byte owner GUID and
the signature, which for the X.509 type is a DER certificate.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Iterator

EFIVARS = "/sys/firmware/efi/efivars"
GLOBAL_VARIABLE = "8be4df61-93ca-11d2-aa0d-00e098032b8c"  # SecureBoot, SetupMode
IMAGE_SECURITY_DATABASE = "d719b2cb-3d3a-4596-a3bc-dad00e67656f"  # db, dbx
CERT_X509 = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")

_LIST_HEADER = struct.Struct("<16sIII")
_ATTRIBUTES = 4
_OWNER = 16


def variable_path(name: str, guid: str, root: str = EFIVARS) -> str:
    return f"{root}/{name}-{guid}"


def read_variable(name: str, guid: str, root: str = EFIVARS) -> bytes | None:
    """The data of a variable, without its attribute word; None when absent."""
    try:
        with open(variable_path(name, guid, root), "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[_ATTRIBUTES:] if len(raw) > _ATTRIBUTES else None


def read_bool(name: str, guid: str, root: str = EFIVARS) -> int | None:
    data = read_variable(name, guid, root)
    return None if not data else int(data[0] != 0)


def x509_signatures(data: bytes) -> Iterator[bytes]:
    """DER certificates in a run of EFI_SIGNATURE_LISTs; hashes and malformed lists are skipped."""
    pos = 0
    while pos + _LIST_HEADER.size <= len(data):
        type_guid, list_size, header_size, sig_size = _LIST_HEADER.unpack_from(data, pos)
        if list_size < _LIST_HEADER.size or pos + list_size > len(data):
            return
        end = pos + list_size
        if uuid.UUID(bytes_le=type_guid) == CERT_X509 and sig_size > _OWNER:
            start = pos + _LIST_HEADER.size + header_size
            for sig in range(start, end - sig_size + 1, sig_size):
                yield data[sig + _OWNER : sig + sig_size]
        pos = end


def signature_database(name: str, root: str = EFIVARS) -> tuple[str, list[bytes]] | None:
    """(path, certificates) of db or dbx; None when the machine has no such variable."""
    data = read_variable(name, IMAGE_SECURITY_DATABASE, root)
    if data is None:
        return None
    return variable_path(name, IMAGE_SECURITY_DATABASE, root), list(x509_signatures(data))


def efi_booted(root: str = EFIVARS) -> bool:
    return os.path.isdir(root)
