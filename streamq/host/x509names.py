"""X.509 in DER without a library: find certificates in a file, read the names of a TBSCertificate,
and print them the two ways OpenSSL does.

osquery's ``subject`` is ``X509_NAME_oneline`` (``/C=US/O=Let's Encrypt/CN=R3``) and
``subject2`` is ``X509_NAME_print_ex(..., XN_FLAG_ONELINE)`` (``C = US, O = ...``).
Both print the encoded bytes of each value (a BMPString's zero bytes, a
T61String's Latin-1), which a decoded Python string no longer holds, so the
names are read from the raw DER here. The rest of a certificate is read with
`cryptography` in :mod:`streamq.host.x509info`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import NamedTuple

_PEM = re.compile(
    rb"-----BEGIN (X509 CERTIFICATE|CERTIFICATE|TRUSTED CERTIFICATE)-----(.*?)-----END \1-----",
    re.DOTALL,
)


# OpenSSL's short names (OBJ_nid2sn) for the attributes found in distinguished names.
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.15": "businessCategory",
    "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode",
    "2.5.4.18": "postOfficeBox",
    "2.5.4.20": "telephoneNumber",
    "2.5.4.41": "name",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.72": "role",
    "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}


# ASN.1 string tags -> bytes per character in X509_NAME_print_ex (OpenSSL's tag2nbyte); others are dumped as hex.
_CHAR_WIDTH = {12: 1, 18: 1, 19: 1, 20: 1, 22: 1, 23: 1, 24: 1, 26: 1, 28: 4, 30: 2}


_UTF8_STRING, _GENERAL_STRING = 12, 27


# RFC 2253 escaping as OpenSSL's XN_FLAG_ONELINE does it (ASN1_STRFLGS_ESC_QUOTE):
# these characters put the whole value in quotes ...
_QUOTED = frozenset(b",+<>;")


# ... these get a backslash ...
_BACKSLASHED = frozenset(b'"\\')


# ... and these need quotes only at the start (both) or the end (space).
_QUOTED_FIRST, _QUOTED_LAST = frozenset(b" #"), frozenset(b" ")


def split_certificates(data: bytes) -> Iterator[bytes]:
    """The DER of each certificate in a PEM file (any number of blocks) or a DER file."""
    if b"-----BEGIN" in data:
        for match in _PEM.finditer(data):
            try:
                der = base64.b64decode(match.group(2))
                if match.group(1) == b"TRUSTED CERTIFICATE":
                    der = der[: _element(der, 0)[2]]  # OpenSSL's trust settings follow the certificate
            except ValueError:
                continue
            yield der
        return
    pos = 0
    while pos < len(data) and data[pos] == 0x30:  # concatenated DER certificates
        try:
            end = _element(data, pos)[2]
        except ValueError:
            return
        yield data[pos:end]
        pos = end


def _element(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    try:
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if not 0 < count <= 4:
                raise ValueError("unsupported DER length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
    except IndexError as err:
        raise ValueError("truncated DER") from err
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, element start, content start, content end) of each element in data[start:end]."""
    pos = start
    while pos < end:
        tag, cstart, cend = _element(data, pos)
        yield tag, pos, cstart, cend
        pos = cend


def _oid(data: bytes) -> str:
    arcs, value = [], 0
    for byte in data:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


class NameEntry(NamedTuple):
    rdn: int  # entries of one multi-valued RDN share it
    oid: str
    tag: int  # the value's ASN.1 type
    value: bytes
    whole: bytes  # the value's DER element, tag and length included


class TbsParts(NamedTuple):
    issuer: list[NameEntry]
    subject: list[NameEntry]
    key_algorithm: str  # the SubjectPublicKeyInfo's algorithm OID


def parse_tbs(tbs: bytes) -> TbsParts:
    """The parts of a TBSCertificate that are read from its DER rather than through `cryptography`."""
    _tag, start, end = _element(tbs, 0)
    fields = [f for f in _children(tbs, start, end) if f[0] != 0xA0]  # skip the explicit version
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, extensions...
    _atag, _astart, algorithm_start, algorithm_end = next(_children(tbs, fields[5][2], fields[5][3]))
    _otag, _ostart, oid_start, oid_end = next(_children(tbs, algorithm_start, algorithm_end))
    return TbsParts(_name_entries(tbs, fields[2]), _name_entries(tbs, fields[4]), _oid(tbs[oid_start:oid_end]))


def _name_entries(data: bytes, field: tuple[int, int, int, int]) -> list[NameEntry]:
    entries = []
    for index, (_t, _s, rstart, rend) in enumerate(_children(data, field[2], field[3])):
        for _t2, _s2, astart, aend in _children(data, rstart, rend):
            (_ot, _os, ostart, oend), (vtag, vstart, cstart, cend) = list(_children(data, astart, aend))[:2]
            entries.append(NameEntry(index, _oid(data[ostart:oend]), vtag, data[cstart:cend], data[vstart:cend]))
    return entries


def _field_name(oid: str) -> str:
    return _SHORT_NAMES.get(oid, oid)


def name_oneline(entries: list[NameEntry]) -> str:
    """OpenSSL's X509_NAME_oneline: ``/C=US/O=Example/CN=host``, bytes outside ASCII as ``\\xNN``."""
    out = []
    for _rdn, oid, tag, value, _whole in entries:
        if (
            tag == _GENERAL_STRING
            and len(value) % 4 == 0
            and not any(value[i] for i in range(len(value)) if i % 4 != 3)
        ):
            value = value[3::4]  # a UCS-4 GeneralString that is really ASCII: OpenSSL keeps the low bytes
        out.append(f"/{_field_name(oid)}=")
        for byte in value:
            if byte < 0x20 or byte > 0x7E:
                out.append(f"\\x{byte:02X}")
            elif byte in (0x2F, 0x2B):  # "/" and "+" would read as separators
                out.append("\\" + chr(byte))
            else:
                out.append(chr(byte))
    return "".join(out)


def name_print_oneline(entries: list[NameEntry]) -> str:
    """OpenSSL's X509_NAME_print_ex with XN_FLAG_ONELINE: ``C = US, O = Example, CN = host``."""
    out = []
    previous = None
    for rdn, oid, tag, value, whole in entries:
        if previous is not None:
            out.append(" + " if rdn == previous else ", ")
        previous = rdn
        out.append(f"{_field_name(oid)} = {_escape_value(tag, value, whole)}")
    return "".join(out)


def _escape_value(tag: int, value: bytes, whole: bytes) -> str:
    width = _CHAR_WIDTH.get(tag)
    if width is None:
        return "#" + whole.hex().upper()  # an unknown string type: its DER in hex
    if tag == _UTF8_STRING:
        chars = list(value)  # OpenSSL escapes a UTF8String byte by byte without decoding it
    else:
        if len(value) % width:
            raise ValueError("string length is not a multiple of its character width")
        chars = [int.from_bytes(value[i : i + width], "big") for i in range(0, len(value), width)]
    quoted = False
    out = []
    last = len(chars) - 1
    for i, char in enumerate(chars):
        if char > 0x7F:
            encoded = bytes([char]) if tag == _UTF8_STRING else chr(char).encode("utf-8")
            out.append("".join(f"\\{b:02X}" for b in encoded))
        elif char in _QUOTED or (i == last and char in _QUOTED_LAST) or (i == 0 != last and char in _QUOTED_FIRST):
            quoted = True  # OpenSSL tests the last position before the first: a lone "#" stays bare
            out.append(chr(char))
        elif char in _BACKSLASHED:
            out.append("\\" + chr(char))
        elif char < 0x20 or char == 0x7F:
            out.append(f"\\{char:02X}")
        else:
            out.append(chr(char))
    text = "".join(out)
    return f'"{text}"' if quoted else text


def same_name(a: list[NameEntry], b: list[NameEntry]) -> bool:
    """X509_NAME_cmp's idea: equal after folding case and runs of spaces in the string values."""
    return a == b or _canonical(a) == _canonical(b)


def _canonical(entries: list[NameEntry]) -> list[tuple[int, str, str]]:
    out = []
    for rdn, oid, tag, value, _whole in entries:
        codec = {30: "utf-16-be", 28: "utf-32-be"}.get(tag, "utf-8")
        text = value.decode(codec, "replace")
        out.append((rdn, oid, " ".join(text.lower().split())))
    return out
