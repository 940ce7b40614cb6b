"""host/efivars: EFI signature lists parsed from bytes the test builds."""

from __future__ import annotations

import struct
import uuid

from streamq.host import efivars


def signature_list(type_guid: uuid.UUID, signatures: list[bytes]) -> bytes:
    size = 16 + len(signatures[0])
    body = b"".join(uuid.uuid4().bytes_le + s for s in signatures)
    return struct.pack("<16sIII", type_guid.bytes_le, 28 + len(body), 0, size) + body


def test_truncated_signature_list_stops_cleanly():
    data = signature_list(efivars.CERT_X509, [b"x" * 40])
    assert list(efivars.x509_signatures(data[:-10])) == []
