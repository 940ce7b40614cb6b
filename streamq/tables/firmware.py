"""Firmware facts: the physical memory map, UEFI secure boot state and its certificates."""

from __future__ import annotations

from ..sql.schema import DATETIME, INTEGER, TEXT, Column, table
from ..text import decode
from ._common import lazy_module

efivars = lazy_module("streamq.host.efivars")
procfs = lazy_module("streamq.host.procfs")
x509info = lazy_module("streamq.host.x509info")


def parse_iomem(data: bytes) -> list[dict]:
    """/proc/iomem: "start-end : name" per line, nested regions indented by two spaces.

    Addresses read as zero to processes without CAP_SYS_ADMIN; the kernel decides.
    """
    rows = []
    for line in data.splitlines():
        span, sep, name = decode(line).strip().partition(" : ")
        start, dash, end = span.partition("-")
        if sep and dash:
            rows.append({"name": name, "start": f"0x{start}", "end": f"0x{end}"})
    return rows


@table(
    "memory_map",
    "The physical address map of memory and devices, from /proc/iomem.",
    [
        Column("name", TEXT, "What occupies the region: System RAM, Reserved, a device or ACPI table."),
        Column("start", TEXT, "First address, hex (zero unless streamq has CAP_SYS_ADMIN)."),
        Column("end", TEXT, "Last address, hex."),
    ],
    examples=("SELECT name, start, end FROM memory_map WHERE name = 'System RAM'",),
    cost=100,
)
def gen_memory_map(ctx):
    yield from parse_iomem(procfs.read_or_none("/proc/iomem") or b"")


def secureboot_rows(root: str) -> list[dict]:
    """One row on a UEFI machine, none on a BIOS one (no efivars: nothing to report)."""
    if not efivars.efi_booted(root):
        return []
    guid = efivars.GLOBAL_VARIABLE
    return [
        {
            "secure_boot": efivars.read_bool("SecureBoot", guid, root),
            "setup_mode": efivars.read_bool("SetupMode", guid, root),
        }
    ]


@table(
    "secureboot",
    "Whether UEFI secure boot is on, and whether the firmware is in setup mode; no row without UEFI.",
    [
        Column("secure_boot", INTEGER, "1 when secure boot is enabled."),
        Column("setup_mode", INTEGER, "1 when the firmware is in setup mode (keys may be enrolled without signature)."),
    ],
    examples=("SELECT secure_boot, setup_mode FROM secureboot",),
    cost=1,
)
def gen_secureboot(ctx):
    yield from secureboot_rows(efivars.EFIVARS)


def secureboot_certificate_rows(root: str):
    for store, revoked in (("db", 0), ("dbx", 1)):
        found = efivars.signature_database(store, root)
        if found is None:
            continue
        path, certificates = found
        for der in certificates:
            fields = x509info.certificate_fields(der)
            if fields is None:
                continue
            yield {
                **{k: fields[k] for k in _CERT_FIELDS},
                "is_ca": fields["ca"],
                "revoked": revoked,
                "path": path,
            }


_CERT_FIELDS = (
    "common_name",
    "subject",
    "issuer",
    "not_valid_before",
    "not_valid_after",
    "sha1",
    "serial",
    "self_signed",
    "key_usage",
    "authority_key_id",
    "subject_key_id",
    "signing_algorithm",
    "key_algorithm",
    "key_strength",
)


@table(
    "secureboot_certificates",
    "X.509 certificates in the UEFI signature databases: db (allowed signers) and dbx (revoked).",
    [
        Column("common_name", TEXT, "Certificate common name."),
        Column("subject", TEXT, "Subject distinguished name."),
        Column("issuer", TEXT, "Issuer distinguished name."),
        Column("not_valid_before", DATETIME, "Start of validity, unix seconds."),
        Column("not_valid_after", DATETIME, "End of validity, unix seconds."),
        Column("sha1", TEXT, "SHA-1 of the DER certificate."),
        Column("serial", TEXT, "Serial number."),
        Column("revoked", INTEGER, "1 when the certificate is in dbx, the forbidden database."),
        Column("path", TEXT, "The efivars file it came from."),
        Column("is_ca", INTEGER, "1 for a certificate authority."),
        Column("self_signed", INTEGER, "1 when self-signed."),
        Column("key_usage", TEXT, "Key usage extension."),
        Column("authority_key_id", TEXT, "Authority key identifier."),
        Column("subject_key_id", TEXT, "Subject key identifier."),
        Column("signing_algorithm", TEXT, "Signature algorithm."),
        Column("key_algorithm", TEXT, "Public key algorithm."),
        Column("key_strength", TEXT, "Key size."),
    ],
    examples=("SELECT common_name, revoked, not_valid_after FROM secureboot_certificates",),
    cost=20,
)
def gen_secureboot_certificates(ctx):
    yield from secureboot_certificate_rows(efivars.EFIVARS)
