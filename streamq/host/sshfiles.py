"""OpenSSH client files: ssh_config blocks and private key files.

Private keys are identified and measured with `cryptography` (PEM/PKCS#8 and the
openssh-key-v1 format); whether a key is encrypted is read from its header, so
no passphrase is ever tried.
"""

from __future__ import annotations

import base64
import struct
import warnings
from typing import NamedTuple

from ..text import decode

_OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\0"


def parse_ssh_config(data: bytes) -> list[tuple[str, str]]:
    """(block, option) per option line, lowercased as osquery does.

    A block is the `host ...` or `match ...` line that the option follows
    ("" before the first); comments and blank lines are skipped.
    """
    block = ""
    out = []
    for raw in data.split(b"\n"):
        line = decode(raw).strip().lower()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("host ", "match ", "host\t", "match\t")):
            block = line
        else:
            out.append((block, line))
    return out


class PrivateKey(NamedTuple):
    encrypted: int
    key_type: str | None
    group: str | None
    bits: int | None
    security_bits: int | None


def is_private_key(data: bytes) -> bool:
    return b"PRIVATE KEY" in data


def _openssh_cipher(data: bytes) -> str | None:
    """The cipher name in an openssh-key-v1 file ("none" when not encrypted)."""
    start = data.find(_OPENSSH_BEGIN)
    end = data.find(b"-----END", start + 1)
    if start < 0 or end < 0:
        return None
    try:
        blob = base64.b64decode(b"".join(data[start + len(_OPENSSH_BEGIN) : end].split()))
    except ValueError:
        return None
    if not blob.startswith(_OPENSSH_MAGIC) or len(blob) < len(_OPENSSH_MAGIC) + 4:
        return None
    (length,) = struct.unpack_from(">I", blob, len(_OPENSSH_MAGIC))
    offset = len(_OPENSSH_MAGIC) + 4
    return blob[offset : offset + length].decode("ascii", "replace")


def key_encrypted(data: bytes) -> bool:
    cipher = _openssh_cipher(data)
    if cipher is not None:
        return cipher != "none"
    return b"ENCRYPTED" in data  # "Proc-Type: 4,ENCRYPTED" or "BEGIN ENCRYPTED PRIVATE KEY"


def _rsa_dsa_security(bits: int) -> int:
    """NIST SP 800-57 strength of an RSA or DSA modulus, as OpenSSL rounds it down."""
    for limit, strength in ((15360, 256), (7680, 192), (3072, 128), (2048, 112), (1024, 80)):
        if bits >= limit:
            return strength
    return 0


def _ec_security(bits: int) -> int:
    for limit, strength in ((512, 256), (384, 192), (256, 128), (224, 112), (160, 80)):
        if bits >= limit:
            return strength
    return 0


def _load(data: bytes):
    from cryptography.hazmat.primitives import serialization

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _OPENSSH_BEGIN in data:
            return serialization.load_ssh_private_key(data, password=None)
        return serialization.load_pem_private_key(data, password=None)


def describe_key(data: bytes) -> PrivateKey:
    """What a private key file holds; type and size stay NULL for encrypted or unknown keys."""
    encrypted = int(key_encrypted(data))
    if encrypted:
        return PrivateKey(1, None, None, None, None)
    try:
        key = _load(data)
    except (ValueError, TypeError, NotImplementedError, ImportError):
        return PrivateKey(0, None, None, None, None)
    return PrivateKey(0, *_measure(key))


def _measure(key) -> tuple[str | None, str | None, int | None, int | None]:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa", None, key.key_size, _rsa_dsa_security(key.key_size)
    if isinstance(key, dsa.DSAPrivateKey):
        return "dsa", None, key.key_size, _rsa_dsa_security(key.key_size)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ec", _OPENSSL_CURVES.get(key.curve.name, key.curve.name), key.key_size, _ec_security(key.key_size)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519", None, 253, 128  # OpenSSL's figures for the curve
    if isinstance(key, ed448.Ed448PrivateKey):
        return "ed448", None, 456, 224
    return None, None, None, None


# cryptography uses SECG names; OpenSSL calls the NIST P-256 curve prime256v1.
_OPENSSL_CURVES = {"secp256r1": "prime256v1", "secp192r1": "prime192v1"}
