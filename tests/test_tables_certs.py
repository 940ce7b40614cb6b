"""certificates: the live trust store against the openssl CLI, and certificates made here in a tmp dir."""

from __future__ import annotations

import calendar
import datetime as dt
import os
import re
import shutil
import subprocess
import time

import pytest

from streamq.host.certstore import store_paths

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.name import _ASN1Type  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed")
STORE = "/etc/ssl/certs"
HASH_LINK = re.compile(r"/[0-9a-f]{8}\.r?[0-9]+$")
NOW = dt.datetime.now(dt.UTC)

_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _name(*pairs) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def make_cert(
    subject: x509.Name,
    *,
    issuer: x509.Name | None = None,
    key=_RSA_KEY,
    signer=_RSA_KEY,
    ca: bool = True,
    not_before: dt.datetime = NOW - dt.timedelta(days=1),
    not_after: dt.datetime = NOW + dt.timedelta(days=30),
    serial: int = 0x1234,
    issuer_key=None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=not ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def rows_for(conn, path: str) -> list[dict]:
    return conn.query("SELECT * FROM certificates WHERE path = ?", (str(path),))


def openssl_fields(path: str) -> dict:
    """What `openssl x509` says of the first certificate in a file, in the table's terms."""
    args = ["-subject", "-issuer", "-fingerprint", "-sha1", "-serial", "-dates", "-nameopt", "compat"]
    out = subprocess.run(
        [OPENSSL, "x509", "-in", path, "-noout", *args],
        capture_output=True,
        check=True,
    ).stdout.decode()
    fields = dict(line.split("=", 1) for line in out.splitlines())
    two = subprocess.run(
        [OPENSSL, "x509", "-in", path, "-noout", "-subject", "-issuer", "-nameopt", "oneline"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    oneline = dict(line.split("=", 1) for line in two.splitlines())

    def unix(text: str) -> int:
        return calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y GMT"))

    serial = fields["serial"].lstrip("0") or "0"
    return {
        "subject": fields["subject"],
        "issuer": fields["issuer"],
        "subject2": oneline["subject"],
        "issuer2": oneline["issuer"],
        "sha1": fields["sha1 Fingerprint"].replace(":", "").lower(),
        "serial": serial if len(serial) % 2 == 0 or serial == "0" else "0" + serial,
        "not_valid_before": unix(fields["notBefore"]),
        "not_valid_after": unix(fields["notAfter"]),
    }


def openssl_text(path: str) -> str:
    return subprocess.run(
        [OPENSSL, "x509", "-in", path, "-noout", "-text"], capture_output=True, check=True
    ).stdout.decode()


# ---------------------------------------------------------------- the live store


def _store_pems() -> list[str]:
    try:
        names = sorted(os.listdir(STORE))
    except OSError:
        return []
    return [f"{STORE}/{n}" for n in names if n.endswith(".pem") and os.path.isfile(f"{STORE}/{n}")]


@needs_openssl
def test_store_certificates_match_openssl(conn):
    pems = _store_pems()
    if not pems:
        pytest.skip(f"no certificates in {STORE}")
    rows = {r["path"]: r for r in conn.query("SELECT * FROM certificates")}
    for path in pems[:: max(1, len(pems) // 15)]:  # about 15 of them, whatever the store's size
        assert path in rows, f"{path} is missing from the table"
        theirs = openssl_fields(path)
        mine = {k: rows[path][k] for k in theirs}
        assert mine == theirs, path


def test_store_lists_each_path_once_and_skips_hash_links(conn):
    rows = conn.query("SELECT path, sha1 FROM certificates")
    if not rows:
        pytest.skip("no trust store on this host")
    pairs = [(r["path"], r["sha1"]) for r in rows]
    assert len(pairs) == len(set(pairs)), "a certificate appears twice under one path"
    listed = {r["path"] for r in rows}
    for path in listed:
        if HASH_LINK.search(path):  # allowed only when its target is not listed itself
            assert os.path.realpath(path) not in {os.path.realpath(p) for p in listed if p != path}
    for path in _store_pems():
        if os.path.islink(path):  # the link and where it points both count
            target = os.path.realpath(path)
            assert path in listed and (target in listed or not target.startswith(("/usr/share/ca-certificates",)))


def test_bundle_gives_one_row_per_certificate(conn):
    bundle = f"{STORE}/ca-certificates.crt"
    if not os.path.isfile(bundle):
        pytest.skip(f"{bundle} is absent")
    with open(bundle, "rb") as f:
        data = f.read()
    rows = rows_for(conn, bundle)
    assert len(rows) == data.count(b"-----BEGIN CERTIFICATE-----")
    default = conn.query("SELECT count(*) AS n FROM certificates WHERE path = ?", (bundle,))
    assert default[0]["n"] == len(rows)


def test_live_values_are_typed(conn):
    for row in conn.query("SELECT * FROM certificates LIMIT 50"):
        assert row["ca"] in (0, 1) and row["self_signed"] in (0, 1)
        assert isinstance(row["not_valid_before"], int) and isinstance(row["not_valid_after"], int)
        assert re.fullmatch(r"[0-9a-f]{40}", row["sha1"])


# ---------------------------------------------------------------- certificates made here


@pytest.fixture
def ca_and_leaf(tmp_path):
    ca_name = _name(
        (NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "streamq test"), (NameOID.COMMON_NAME, "Test Root")
    )
    ca = make_cert(ca_name, key=_RSA_KEY, signer=_RSA_KEY, issuer_key=_RSA_KEY, serial=0x0A01)
    leaf = make_cert(
        _name((NameOID.COMMON_NAME, "leaf.example")),
        issuer=ca_name,
        key=_EC_KEY,
        signer=_RSA_KEY,
        ca=False,
        issuer_key=_RSA_KEY,
        serial=0xBEEF,
    )
    (tmp_path / "ca.pem").write_bytes(pem(ca))
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    return tmp_path, ca, leaf


def test_generated_ca_and_leaf(conn, ca_and_leaf):
    tmp, ca, leaf = ca_and_leaf
    [root] = rows_for(conn, tmp / "ca.pem")
    [child] = rows_for(conn, tmp / "leaf.pem")
    assert (root["ca"], root["self_signed"]) == (1, 1)
    assert (child["ca"], child["self_signed"]) == (0, 0)
    assert root["common_name"] == "Test Root" and child["common_name"] == "leaf.example"
    assert root["subject"] == "/C=US/O=streamq test/CN=Test Root" == child["issuer"]
    assert root["subject2"] == "C = US, O = streamq test, CN = Test Root"
    assert root["key_usage"] == "CRL Sign, Key Cert Sign"
    assert child["key_usage"] == "Key Encipherment, Digital Signature"
    assert child["authority_key_id"] == root["subject_key_id"] == root["authority_key_id"]
    assert root["subject_key_id"] == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    assert (root["key_algorithm"], root["key_strength"]) == ("rsaEncryption", "2048")
    assert (child["key_algorithm"], child["key_strength"]) == ("id-ecPublicKey", "prime256v1")
    assert child["signing_algorithm"] == "sha256WithRSAEncryption"
    assert (root["serial"], child["serial"]) == ("0A01", "BEEF")
    assert child["sha1"] == leaf.fingerprint(hashes.SHA1()).hex()
    assert child["not_valid_after"] == int(leaf.not_valid_after_utc.timestamp())


@needs_openssl
def test_generated_certificates_match_openssl_text(ca_and_leaf, conn):
    tmp, _ca, _leaf = ca_and_leaf
    for name in ("ca.pem", "leaf.pem"):
        path = str(tmp / name)
        [row] = rows_for(conn, path)
        assert {k: row[k] for k in openssl_fields(path)} == openssl_fields(path)
        text = openssl_text(path)
        assert f"Signature Algorithm: {row['signing_algorithm']}" in text
        assert f"Public Key Algorithm: {row['key_algorithm']}" in text
        strength = f"({row['key_strength']} bit)" if row["key_algorithm"] == "rsaEncryption" else row["key_strength"]
        assert strength in text


@needs_openssl
def test_names_with_escapes_match_openssl(conn, tmp_path):
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Müller, Söhne + Co/KG"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ' lead "quoted" back\\slash '),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "#hash;semi<lt>"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Zürich", _type=_ASN1Type.BMPString),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@example.org"),
            x509.NameAttribute(NameOID.COMMON_NAME, "日本 tab\there"),
            x509.NameAttribute(NameOID.SURNAME, "#"),  # alone, a leading "#" needs no quotes in OpenSSL
            x509.NameAttribute(NameOID.GIVEN_NAME, " "),
        ]
    )
    path = tmp_path / "names.pem"
    path.write_bytes(pem(make_cert(subject)))
    [row] = rows_for(conn, path)
    theirs = openssl_fields(str(path))
    assert (row["subject"], row["subject2"]) == (theirs["subject"], theirs["subject2"])
    assert row["issuer2"] == theirs["issuer2"]
    assert row["common_name"] == "日本 tab\there"


def test_expired_der_and_bundle(conn, tmp_path):
    old = make_cert(
        _name((NameOID.COMMON_NAME, "expired")),
        not_before=dt.datetime(2001, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2002, 1, 1, tzinfo=dt.UTC),
    )
    (tmp_path / "old.pem").write_bytes(pem(old))
    [row] = rows_for(conn, tmp_path / "old.pem")
    assert (row["not_valid_before"], row["not_valid_after"]) == (978307200, 1009843200)

    (tmp_path / "cert.der").write_bytes(old.public_bytes(serialization.Encoding.DER))
    [der_row] = rows_for(conn, tmp_path / "cert.der")
    assert der_row["sha1"] == row["sha1"] and der_row["path"] == str(tmp_path / "cert.der")

    three = [make_cert(_name((NameOID.COMMON_NAME, f"member {i}")), serial=100 + i) for i in range(3)]
    (tmp_path / "bundle.crt").write_bytes(b"# a comment line\n" + b"\n".join(pem(c) for c in three))
    rows = rows_for(conn, tmp_path / "bundle.crt")
    assert [r["common_name"] for r in rows] == ["member 0", "member 1", "member 2"]
    assert [r["serial"] for r in rows] == ["64", "65", "66"]


@needs_openssl
def test_trusted_certificate_pem(conn, ca_and_leaf):
    tmp, ca, _leaf = ca_and_leaf
    trusted = tmp / "trusted.pem"
    subprocess.run(
        [OPENSSL, "x509", "-in", str(tmp / "ca.pem"), "-addtrust", "serverAuth", "-trustout", "-out", str(trusted)],
        check=True,
        capture_output=True,
    )
    assert b"BEGIN TRUSTED CERTIFICATE" in trusted.read_bytes()
    [row] = rows_for(conn, trusted)
    assert row["sha1"] == ca.fingerprint(hashes.SHA1()).hex()


def test_malformed_files_give_no_rows(conn, tmp_path):
    good = pem(make_cert(_name((NameOID.COMMON_NAME, "good"))))
    broken = good.replace(good[100:140], b"A" * 40)  # valid base64, broken DER
    cases = {
        "garbage.pem": b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        "broken.pem": broken,
        "random.der": bytes([0x30, 0x82, 0xFF, 0xFF]) + os.urandom(64),
        "empty.crt": b"",
        "text.txt": b"hello\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert rows_for(conn, tmp_path / name) == [], name
    (tmp_path / "mixed.pem").write_bytes(broken + good)  # the good one still counts
    assert [r["common_name"] for r in rows_for(conn, tmp_path / "mixed.pem")] == ["good"]
    assert rows_for(conn, tmp_path / "absent.pem") == []
    os.mkfifo(tmp_path / "fifo.pem")
    assert rows_for(conn, tmp_path / "fifo.pem") == []  # never blocks on a FIFO
    assert rows_for(conn, tmp_path) == []  # a directory is not a certificate file


def test_symlink_loops_and_hash_links(conn, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "real.pem").write_bytes(pem(make_cert(_name((NameOID.COMMON_NAME, "real")))))
    os.symlink("real.pem", store / "alias.pem")
    os.symlink("real.pem", store / "0123abcd.0")  # c_rehash's alias of a file listed anyway
    outside = tmp_path / "outside.pem"
    outside.write_bytes(pem(make_cert(_name((NameOID.COMMON_NAME, "outside")))))
    os.symlink(outside, store / "89abcdef.0")  # its target is not in the store: the link is the only way in
    os.symlink("loop-b", store / "loop-a")
    os.symlink("loop-a", store / "loop-b")
    os.symlink(".", store / "self")  # a directory loop
    os.symlink("../store", store / "sub")
    started = time.monotonic()
    paths = store_paths([str(store)], [])
    assert time.monotonic() - started < 5
    assert sorted(os.path.basename(p) for p in paths) == ["89abcdef.0", "alias.pem", "real.pem"]
    assert rows_for(conn, store / "loop-a") == []
    [row] = rows_for(conn, store / "0123abcd.0")  # named explicitly, a hash link is read
    assert row["common_name"] == "real"
