"""memory_map against /proc/iomem; secureboot tables on efivars fixtures written in the kernel's format."""

from __future__ import annotations

import datetime
import os
import struct
import subprocess
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_host_efivars import signature_list

from streamq.host import efivars
from streamq.tables import firmware

ATTRS = struct.pack("<I", 0x7)  # non-volatile, boot-service and runtime access
SHA256_TYPE = uuid.UUID("c1c41626-504c-4092-aca9-41f936934328")


def test_memory_map_matches_proc_iomem(conn):
    top = []
    for line in open("/proc/iomem").read().splitlines():  # noqa: SIM115
        span, _, name = line.strip().partition(" : ")
        top.append((name, "0x" + span.split("-")[0], "0x" + span.split("-")[1]))
    rows = conn.query("SELECT name, start, end FROM memory_map")
    assert [(r["name"], r["start"], r["end"]) for r in rows] == top
    assert any(r["name"] == "System RAM" for r in rows)


def test_no_uefi_means_no_rows(conn, tmp_path):
    if os.path.isdir(efivars.EFIVARS):
        pytest.skip("this machine booted with UEFI")
    assert conn.query("SELECT * FROM secureboot") == []
    assert conn.query("SELECT * FROM secureboot_certificates") == []


def test_secureboot_reads_the_variables(tmp_path):
    (tmp_path / f"SecureBoot-{efivars.GLOBAL_VARIABLE}").write_bytes(ATTRS + b"\x01")
    (tmp_path / f"SetupMode-{efivars.GLOBAL_VARIABLE}").write_bytes(ATTRS + b"\x00")
    assert firmware.secureboot_rows(str(tmp_path)) == [{"secure_boot": 1, "setup_mode": 0}]
    (tmp_path / f"SetupMode-{efivars.GLOBAL_VARIABLE}").unlink()
    assert firmware.secureboot_rows(str(tmp_path)) == [{"secure_boot": 1, "setup_mode": None}]


def _certificate(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test")]
    )
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _openssl(der: bytes, *args: str) -> str:
    return subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", *args], input=der, capture_output=True, check=True
    ).stdout.decode()


def test_secureboot_certificates_from_db_and_dbx(tmp_path):
    allowed, revoked = _certificate("Allowed CA"), _certificate("Revoked CA")
    hashes_list = signature_list(SHA256_TYPE, [os.urandom(32), os.urandom(32)])  # dbx holds hashes too: skipped
    db = tmp_path / f"db-{efivars.IMAGE_SECURITY_DATABASE}"
    dbx = tmp_path / f"dbx-{efivars.IMAGE_SECURITY_DATABASE}"
    db.write_bytes(ATTRS + signature_list(efivars.CERT_X509, [allowed]))
    dbx.write_bytes(ATTRS + hashes_list + signature_list(efivars.CERT_X509, [revoked]))
    rows = list(firmware.secureboot_certificate_rows(str(tmp_path)))
    assert [(r["common_name"], r["revoked"], r["path"]) for r in rows] == [
        ("Allowed CA", 0, str(db)),
        ("Revoked CA", 1, str(dbx)),
    ]
    for der, row in zip((allowed, revoked), rows):
        fingerprint = _openssl(der, "-fingerprint", "-sha1").strip().split("=", 1)[1]
        assert row["sha1"] == fingerprint.replace(":", "").lower()
        assert row["is_ca"] == 1 and row["self_signed"] == 1
        assert row["not_valid_before"] == 1704067200
