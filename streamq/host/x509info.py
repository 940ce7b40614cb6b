"""X.509 certificates to osquery's `certificates` columns, worded the way OpenSSL prints them.

osquery fills the table with OpenSSL calls, so its strings are OpenSSL's:
algorithm names are OpenSSL's long names, and the subject and issuer are
printed from the raw DER (:mod:`streamq.host.x509names`). `cryptography`
parses the rest of the certificate.

Imported lazily: `cryptography` costs tens of milliseconds to import.
"""

from __future__ import annotations

import datetime
import hashlib
import warnings

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.utils import CryptographyDeprecationWarning

from .x509names import NameEntry, name_oneline, name_print_oneline, parse_tbs, same_name, split_certificates

__all__ = ["certificate_fields", "split_certificates"]


# OpenSSL's long names (OBJ_nid2ln) for signature and public key algorithms.
_LONG_NAMES = {
    "1.2.840.113549.1.1.1": "rsaEncryption",
    "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.10040.4.1": "dsaEncryption",
    "1.2.840.10040.4.3": "dsaWithSHA1",
    "2.16.840.1.101.3.4.3.1": "dsa_with_SHA224",
    "2.16.840.1.101.3.4.3.2": "dsa_with_SHA256",
    "1.2.840.10045.2.1": "id-ecPublicKey",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}

# cryptography's curve names where OpenSSL's long name differs.
_CURVES = {"secp192r1": "prime192v1", "secp256r1": "prime256v1"}

# OpenSSL's key usage words, in the order osquery prints them (by bit value).
_KEY_USAGES = (
    ("encipher_only", "Encipher Only"),
    ("crl_sign", "CRL Sign"),
    ("key_cert_sign", "Key Cert Sign"),
    ("key_agreement", "Key Agreement"),
    ("data_encipherment", "Data Encipherment"),
    ("key_encipherment", "Key Encipherment"),
    ("content_commitment", "Non Repudiation"),
    ("digital_signature", "Digital Signature"),
    ("decipher_only", "Decipher Only"),
)


def _common_name(entries: list[NameEntry], name: x509.Name) -> str | None:
    try:
        attrs = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if attrs and isinstance(attrs[0].value, str):
            return attrs[0].value or None
    except ValueError:
        pass
    for _rdn, oid, _tag, value, _whole in entries:  # cryptography could not decode it: give OpenSSL's bytes
        if oid == "2.5.4.3":
            return value.decode("utf-8", "backslashreplace") or None
    return None


def certificate_fields(der: bytes) -> dict | None:
    """osquery's `certificates` columns for one DER certificate (path left out), or None if unparsable."""
    with warnings.catch_warnings():
        # Trust stores still hold CAs with a zero or negative serial: such a row is data, not a warning to print.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _fields(der)


def _fields(der: bytes) -> dict | None:
    try:
        cert = x509.load_der_x509_certificate(der)
        tbs = parse_tbs(cert.tbs_certificate_bytes)
        issuer_entries, subject_entries = tbs.issuer, tbs.subject
        before, after = _unix(cert, "not_valid_before"), _unix(cert, "not_valid_after")
        serial = cert.serial_number
    except (ValueError, IndexError, OverflowError, StopIteration):
        return None
    extensions = _extensions(cert)
    self_issued = same_name(issuer_entries, subject_entries)
    key_usage = extensions.get(x509.KeyUsage)
    ski = extensions.get(x509.SubjectKeyIdentifier)
    aki = extensions.get(x509.AuthorityKeyIdentifier)
    return {
        "common_name": _common_name(subject_entries, _subject(cert)),
        "subject": name_oneline(subject_entries),
        "subject2": _or_none(name_print_oneline, subject_entries),
        "issuer": name_oneline(issuer_entries),
        "issuer2": _or_none(name_print_oneline, issuer_entries),
        "ca": int(_is_ca(cert, extensions, self_issued)),
        "self_signed": int(self_issued and _signs_itself(cert, extensions)),
        "not_valid_before": before,
        "not_valid_after": after,
        "signing_algorithm": _long_name(cert.signature_algorithm_oid.dotted_string),
        "key_algorithm": _long_name(tbs.key_algorithm),
        "key_strength": _key_strength(cert),
        "key_usage": _key_usage(key_usage),
        "subject_key_id": ski.digest.hex() if ski else None,
        "authority_key_id": aki.key_identifier.hex() if aki and aki.key_identifier is not None else None,
        "sha1": hashlib.sha1(der, usedforsecurity=False).hexdigest(),
        "serial": _serial(serial),
    }


def _unix(cert: x509.Certificate, attr: str) -> int:
    aware = getattr(cert, attr + "_utc", None)  # cryptography >= 42; older versions give naive UTC
    return int((aware or getattr(cert, attr).replace(tzinfo=datetime.UTC)).timestamp())


def _or_none(func, arg):
    try:
        return func(arg)
    except ValueError:
        return None  # OpenSSL fails on the same input: osquery leaves the column empty


def _subject(cert: x509.Certificate) -> x509.Name:
    try:
        return cert.subject
    except ValueError:
        return x509.Name([])


def _extensions(cert: x509.Certificate) -> dict[type, object]:
    """Extension classes -> values; a certificate with a malformed extension list is read as having none."""
    try:
        return {type(ext.value): ext.value for ext in cert.extensions}
    except (ValueError, x509.DuplicateExtension):
        return {}


def _long_name(oid: str) -> str:
    return _LONG_NAMES.get(oid, oid)


def _serial(serial: int) -> str:
    """BN_bn2hex: upper-case hex in whole bytes, a minus sign for the (invalid but seen) negative ones."""
    if serial == 0:
        return "0"
    magnitude = abs(serial)
    text = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big").hex().upper()
    return "-" + text if serial < 0 else text


def _key_strength(cert: x509.Certificate) -> str | None:
    """Key size in bits for RSA and DSA, the curve's name for EC keys (osquery's mixed column)."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None
    if isinstance(key, rsa.RSAPublicKey):
        return str((key.key_size + 7) // 8 * 8)  # OpenSSL counts whole bytes of the modulus
    if isinstance(key, dsa.DSAPublicKey):
        return str(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _CURVES.get(key.curve.name, key.curve.name)
    return None


def _key_usage(usage: x509.KeyUsage | None) -> str | None:
    if usage is None:
        return None
    words = []
    for attr, word in _KEY_USAGES:
        try:
            if getattr(usage, attr):
                words.append(word)
        except ValueError:
            continue  # encipher_only / decipher_only are undefined without key_agreement
    return ", ".join(words)


def _ku_rejects_cert_sign(extensions: dict) -> bool:
    usage = extensions.get(x509.KeyUsage)
    return usage is not None and not usage.key_cert_sign


def _is_ca(cert: x509.Certificate, extensions: dict, self_issued: bool) -> bool:
    """X509_check_ca: basicConstraints decides; without it a v1 self-signed root or a keyCertSign key usage."""
    if _ku_rejects_cert_sign(extensions):
        return False
    constraints = extensions.get(x509.BasicConstraints)
    if constraints is not None:
        return constraints.ca
    if cert.version == x509.Version.v1 and self_issued and _signs_itself(cert, extensions):
        return True
    return x509.KeyUsage in extensions


def _signs_itself(cert: x509.Certificate, extensions: dict) -> bool:
    """The rest of X509_check_issued(cert, cert): the authority key id names itself and it may sign certificates."""
    aki = extensions.get(x509.AuthorityKeyIdentifier)
    if aki is not None:
        ski = extensions.get(x509.SubjectKeyIdentifier)
        if aki.key_identifier is not None and ski is not None and aki.key_identifier != ski.digest:
            return False
        if aki.authority_cert_serial_number is not None and aki.authority_cert_serial_number != cert.serial_number:
            return False
        dir_names = [n.value for n in aki.authority_cert_issuer or () if isinstance(n, x509.DirectoryName)]
        if dir_names and _issuer(cert) not in dir_names:
            return False
    return not _ku_rejects_cert_sign(extensions)


def _issuer(cert: x509.Certificate) -> x509.Name | None:
    try:
        return cert.issuer
    except ValueError:
        return None
