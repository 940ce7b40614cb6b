"""curl_certificate's columns for one X.509 certificate, in OpenSSL's text forms.

osquery prints extensions with OpenSSL's X509V3_EXT_print (what `openssl x509
-text` shows, lines joined by ";"); the common extensions are written here in
the same words from cryptography's parsed objects, others as their DER in hex.
"""

from __future__ import annotations

import hashlib
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

_KEY_USAGE = (
    ("digital_signature", "Digital Signature"),
    ("content_commitment", "Non Repudiation"),
    ("key_encipherment", "Key Encipherment"),
    ("data_encipherment", "Data Encipherment"),
    ("key_agreement", "Key Agreement"),
    ("key_cert_sign", "Certificate Sign"),
    ("crl_sign", "CRL Sign"),
)
_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "TLS Web Server Authentication",
    "1.3.6.1.5.5.7.3.2": "TLS Web Client Authentication",
    "1.3.6.1.5.5.7.3.3": "Code Signing",
    "1.3.6.1.5.5.7.3.4": "E-mail Protection",
    "1.3.6.1.5.5.7.3.8": "Time Stamping",
    "1.3.6.1.5.5.7.3.9": "OCSP Signing",
    "2.5.29.37.0": "Any Extended Key Usage",
}
# OpenSSL's short names (OBJ_nid2sn) of common signature algorithms.
_SIG_NAMES = {
    "1.2.840.113549.1.1.5": "RSA-SHA1",
    "1.2.840.113549.1.1.11": "RSA-SHA256",
    "1.2.840.113549.1.1.12": "RSA-SHA384",
    "1.2.840.113549.1.1.13": "RSA-SHA512",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}


def _hex_colon(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def _name_value(name: x509.Name, oid) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    return str(attrs[-1].value) if attrs else None


def asn1_time(unix: int) -> str:
    """ASN1_TIME_print's form: "Jan  1 00:00:00 2024 GMT"."""
    t = time.gmtime(unix)
    return time.strftime("%b ", t) + f"{t.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y GMT", t)


def _general_name(name) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP Address:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.DirectoryName):
        return "DirName:" + "/".join(f"{a.rfc4514_attribute_name}={a.value}" for a in name.value)
    return f"othername:{name.value!r}"


def _extension_text(ext) -> str:
    value = ext.value
    if isinstance(value, x509.KeyUsage):
        words = [label for attr, label in _KEY_USAGE if getattr(value, attr)]
        if value.key_agreement:
            words += [
                label
                for attr, label in (("encipher_only", "Encipher Only"), ("decipher_only", "Decipher Only"))
                if getattr(value, attr)
            ]
        return ", ".join(words)
    if isinstance(value, x509.ExtendedKeyUsage):
        return ", ".join(_EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in value)
    if isinstance(value, x509.BasicConstraints):
        text = f"CA:{'TRUE' if value.ca else 'FALSE'}"
        return text + (f", pathlen:{value.path_length}" if value.path_length is not None else "")
    if isinstance(value, x509.SubjectKeyIdentifier):
        return _hex_colon(value.digest)
    if isinstance(value, x509.AuthorityKeyIdentifier) and value.key_identifier is not None:
        return _hex_colon(value.key_identifier)
    if isinstance(value, (x509.SubjectAlternativeName, x509.IssuerAlternativeName)):
        return ", ".join(_general_name(n) for n in value)
    if isinstance(value, (x509.AuthorityInformationAccess, x509.SubjectInformationAccess)):
        names = {"1.3.6.1.5.5.7.48.1": "OCSP", "1.3.6.1.5.5.7.48.2": "CA Issuers"}
        return ";".join(
            f"{names.get(d.access_method.dotted_string, d.access_method.dotted_string)} - {_general_name(d.access_location)}"
            for d in value
        )
    if isinstance(value, x509.CertificatePolicies):
        return ";".join(f"Policy: {p.policy_identifier.dotted_string}" for p in value)
    return value.public_bytes().hex() if hasattr(value, "public_bytes") else ""


def _extension(cert: x509.Certificate, oid) -> str:
    try:
        return _extension_text(cert.extensions.get_extension_for_oid(oid))
    except x509.ExtensionNotFound:
        return ""
    except ValueError:  # an extension cryptography cannot parse
        return ""


_EXTENSION_COLUMNS = (
    ("subject_key_identifier", ExtensionOID.SUBJECT_KEY_IDENTIFIER),
    ("authority_key_identifier", ExtensionOID.AUTHORITY_KEY_IDENTIFIER),
    ("key_usage", ExtensionOID.KEY_USAGE),
    ("extended_key_usage", ExtensionOID.EXTENDED_KEY_USAGE),
    ("policies", ExtensionOID.CERTIFICATE_POLICIES),
    ("subject_alternative_names", ExtensionOID.SUBJECT_ALTERNATIVE_NAME),
    ("issuer_alternative_names", ExtensionOID.ISSUER_ALTERNATIVE_NAME),
    ("info_access", ExtensionOID.AUTHORITY_INFORMATION_ACCESS),
    ("subject_info_access", ExtensionOID.SUBJECT_INFORMATION_ACCESS),
    ("policy_mappings", ExtensionOID.POLICY_MAPPINGS),
    ("basic_constraint", ExtensionOID.BASIC_CONSTRAINTS),
    ("name_constraints", ExtensionOID.NAME_CONSTRAINTS),
    ("policy_constraints", ExtensionOID.POLICY_CONSTRAINTS),
)


def certificate_columns(der: bytes, *, now: float | None = None) -> dict:
    cert = x509.load_der_x509_certificate(der)
    subject, issuer = cert.subject, cert.issuer
    not_after = int(cert.not_valid_after_utc.timestamp())
    row = {
        "common_name": _name_value(subject, NameOID.COMMON_NAME),
        "organization": _name_value(subject, NameOID.ORGANIZATION_NAME),
        "organization_unit": _name_value(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        "serial_number": f"{cert.serial_number:X}" if cert.serial_number >= 0 else f"-{-cert.serial_number:X}",
        "issuer_common_name": _name_value(issuer, NameOID.COMMON_NAME),
        "issuer_organization": _name_value(issuer, NameOID.ORGANIZATION_NAME),
        "issuer_organization_unit": _name_value(issuer, NameOID.ORGANIZATIONAL_UNIT_NAME),
        "valid_from": asn1_time(int(cert.not_valid_before_utc.timestamp())),
        "valid_to": asn1_time(not_after),
        "sha256_fingerprint": hashlib.sha256(der).hexdigest(),
        "sha1_fingerprint": hashlib.sha1(der, usedforsecurity=False).hexdigest(),
        "version": cert.version.value + 1,
        "signature_algorithm": _SIG_NAMES.get(
            cert.signature_algorithm_oid.dotted_string, cert.signature_algorithm_oid.dotted_string
        ),
        "signature": ":".join(f"{b:02x}" for b in cert.signature),
        "has_expired": int(not_after <= (time.time() if now is None else now)),
    }
    row.update({column: _extension(cert, oid) for column, oid in _EXTENSION_COLUMNS})
    return row


def pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
