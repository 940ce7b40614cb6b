"""Firmware tables: the BIOS or UEFI identity, the tables it hands over (ACPI, SMBIOS), CPUID,
the physical memory map, UEFI secure boot with its certificates, and the Intel ME's version.

Read from /sys/class/dmi/id, /sys/firmware, /proc/iomem, efivarfs and the
kernel's cpuid driver (or /proc/cpuinfo): see :mod:`streamq.host.sysdevices`,
:mod:`streamq.host.hwdata`, :mod:`streamq.host.efivars`, :mod:`streamq.host.cpuid` and
:mod:`streamq.host.intelme` (the mei driver's /dev/mei0).
"""

from __future__ import annotations

import os

from ..host import procfs
from ..sql.schema import DATETIME, INTEGER, TEXT, Column, table
from ._common import lazy_module

cpuid = lazy_module("streamq.host.cpuid")
efivars = lazy_module("streamq.host.efivars")
hwdata = lazy_module("streamq.host.hwdata")
intelme = lazy_module("streamq.host.intelme")
sysdevices = lazy_module("streamq.host.sysdevices")
sysinfo = lazy_module("streamq.host.sysinfo")
x509info = lazy_module("streamq.host.x509info")


@table(
    "platform_info",
    "Firmware (BIOS or UEFI) identity from DMI; no row on hosts without DMI.",
    [
        Column("vendor", TEXT, "Firmware vendor."),
        Column("version", TEXT, "Firmware version."),
        Column("date", TEXT, "Firmware release date as the firmware writes it."),
        Column("revision", TEXT, "Firmware release number (major.minor)."),
        Column("extra", TEXT, "Extra firmware information; not available from sysfs."),
        Column("firmware_type", TEXT, "uefi when booted through EFI, else bios."),
        Column("address", TEXT, "Firmware runtime segment address; not available from sysfs."),
        Column("size", TEXT, "Firmware ROM size; not available from sysfs."),
        Column("volume_size", INTEGER, "Firmware volume size; not available from sysfs."),
    ],
    examples=("SELECT vendor, version, date, firmware_type FROM platform_info",),
    cost=1,
)
def gen_platform_info(ctx):
    vendor, version = sysinfo.dmi("bios_vendor"), sysinfo.dmi("bios_version")
    date, revision = sysinfo.dmi("bios_date"), sysinfo.dmi("bios_release")
    if vendor is None and version is None and date is None:
        return
    yield {
        "vendor": vendor,
        "version": version,
        "date": date,
        "revision": revision,
        "firmware_type": "uefi" if os.path.isdir("/sys/firmware/efi") else "bios",
    }


@table(
    "acpi_tables",
    "ACPI tables the firmware handed to the kernel, with their sizes and MD5 digests.",
    [
        Column("name", TEXT, "Signature of the table, with the kernel's instance number when there are several."),
        Column("size", INTEGER, "Size of the table in bytes."),
        Column("md5", TEXT, "MD5 digest of the table's bytes."),
    ],
    examples=("SELECT name, size, md5 FROM acpi_tables",),
    cost=20,
)
def gen_acpi_tables(ctx):
    yield from acpi_rows(sysdevices.ACPI_TABLES)


def acpi_rows(root: str):
    """One row per readable table file under ``root``."""
    for name, data in sysdevices.acpi_tables(root):
        yield {"name": name, "size": len(data), "md5": hwdata.md5(data)}


@table(
    "smbios_tables",
    "Structures of the firmware's SMBIOS (DMI) table: one row per structure header.",
    [
        Column("number", INTEGER, "Position of the structure in the table, from 0."),
        Column("type", INTEGER, "SMBIOS structure type."),
        Column("description", TEXT, "Name of the structure type, or Unknown."),
        Column("handle", INTEGER, "Handle that identifies the structure."),
        Column("header_size", INTEGER, "Length of the formatted part, from the structure's header."),
        Column("size", INTEGER, "Length of the whole structure, strings included."),
        Column("md5", TEXT, "MD5 digest of the whole structure."),
    ],
    examples=("SELECT type, description, count(*) FROM smbios_tables GROUP BY type",),
    cost=50,
)
def gen_smbios_tables(ctx):
    data = procfs.read_or_none(f"{sysdevices.DMI_TABLES}/DMI")
    if not data:
        return
    entry = procfs.read_or_none(f"{sysdevices.DMI_TABLES}/smbios_entry_point")
    length = hwdata.smbios_table_length(entry) if entry else None
    yield from smbios_rows(data[:length] if length else data)


def smbios_rows(data: bytes):
    for s in hwdata.parse_smbios(data):
        yield {
            "number": s.number,
            "type": s.type,
            "description": hwdata.SMBIOS_TYPES.get(s.type, "Unknown"),
            "handle": s.handle,
            "header_size": s.header_size,
            "size": len(s.data),
            "md5": hwdata.md5(s.data),
        }


@table(
    "cpuid",
    "Processor vendor, brand, family and feature bits, as the CPUID instruction reports them.",
    [
        Column("feature", TEXT, "Name of the feature or property."),
        Column("value", TEXT, "Its value: 1 or 0 for a feature bit, text for the others."),
        Column("output_register", TEXT, "Register (or registers) of the CPUID output holding it."),
        Column("output_bit", INTEGER, "Bit within the register for a feature bit, else 0."),
        Column("input_eax", TEXT, "CPUID leaf (and sub-leaf) queried, as osquery writes it."),
    ],
    examples=(
        "SELECT feature, value, output_register, output_bit, input_eax FROM cpuid",
        "SELECT feature FROM cpuid WHERE value = '1' AND output_bit > 0",
    ),
    cost=60,
)
def gen_cpuid(ctx):
    reader = cpuid.open_device()
    if reader is not None:
        try:
            rows = list(cpuid.cpuid_rows(reader))  # all or nothing, so a fallback never repeats rows
        except OSError:
            rows = []  # the driver refused a leaf: fall back to what the kernel printed
        finally:
            reader.close()
        if rows:
            yield from rows
            return
    data = procfs.read_or_none("/proc/cpuinfo")
    if data:
        yield from cpuid.cpuinfo_rows(data)


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
    yield from sysdevices.parse_iomem(procfs.read_or_none("/proc/iomem") or b"")


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


@table(
    "intel_me_info",
    "Intel Management Engine firmware version, asked through the mei driver; no row without one (needs root).",
    [Column("version", TEXT, "Firmware version: major.minor.hotfix.build.")],
    examples=("SELECT version FROM intel_me_info",),
    cost=1,
)
def gen_intel_me_info(ctx):
    try:
        version = intelme.firmware_version()
    except PermissionError:
        return  # /dev/mei0 is root's: no rows (the CLI's note says so, tables.privileges)
    if version is not None:
        yield {"version": version}
