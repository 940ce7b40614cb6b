"""certificates: every X.509 certificate in the system trust stores, or in the files a query names.

Which files are the trust stores, and under which paths a certificate is
reported, is :mod:`streamq.host.certstore`'s business; the columns are
OpenSSL's wording (:mod:`streamq.host.x509info`).
``WHERE path = '...'`` reads just those files, store or not, hash link or not.
"""

from __future__ import annotations

from ..sql.schema import DATETIME, INTEGER, TEXT, Column, table
from ..text import decode_path, encode_path
from ._common import lazy_module

certstore = lazy_module("streamq.host.certstore")


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
        pairs = [(decode_path(p), p) for p in certstore.store_paths()]
    yield from certstore.certificate_rows(pairs)
