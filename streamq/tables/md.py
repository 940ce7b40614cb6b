"""Linux software RAID: arrays, their member drives, and the RAID personalities the kernel has."""

from __future__ import annotations

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

mdstat = lazy_module("streamq.host.mdstat")
procfs = lazy_module("streamq.host.procfs")


def _read(path: str | None = None):
    return mdstat.parse_mdstat(procfs.read_or_none(path or mdstat.MDSTAT) or b"")


@table(
    "md_personalities",
    "RAID levels (personalities) the kernel's md driver has loaded, from /proc/mdstat.",
    [Column("name", TEXT, "Personality, e.g. raid1, raid6, linear.")],
    examples=("SELECT name FROM md_personalities",),
    cost=5,
)
def gen_md_personalities(ctx):
    for name in _read().personalities:
        yield {"name": name}


def _count(members, word: str) -> int:
    return sum(1 for _dev, _slot, state in members if word in state.split(","))


def md_device_rows(stat, sys_root: str) -> list[dict]:
    rows = []
    for array in stat.arrays:
        sysfs = mdstat.sys_md(array.name, sys_root)
        members = mdstat.sys_members(array.name, sys_root)
        failed = _count(members, "faulty") if members else sum("(F)" in f for _n, _d, f in array.drives)
        spare = _count(members, "spare") if members else sum("(S)" in f for _n, _d, f in array.drives)
        row = {
            "device_name": array.name,
            "status": array.status,
            "raid_level": mdstat.level_number(sysfs.get("level") or array.level),
            "size": array.size,
            "chunk_size": int(sysfs["chunk_size"]) if sysfs.get("chunk_size", "").isdigit() else None,
            "raid_disks": int(sysfs["raid_disks"]) if sysfs.get("raid_disks", "").isdigit() else None,
            "nr_raid_disks": len(members) or len(array.drives),
            "working_disks": (len(members) or len(array.drives)) - failed,
            "active_disks": _count(members, "in_sync") if members else len(array.drives) - failed - spare,
            "failed_disks": failed,
            "spare_disks": spare,
            "superblock_state": sysfs.get("array_state"),
            "superblock_version": sysfs.get("metadata_version"),
            "superblock_update_time": None,
            "unused_devices": stat.unused,
            "other": array.other,
        }
        for action, prefix in (
            ("recovery", "recovery"),
            ("resync", "resync"),
            ("reshape", "reshape"),
            ("check", "check_array"),
        ):
            progress, finish, speed = array.actions.get(action, (None, None, None))
            row.update({f"{prefix}_progress": progress, f"{prefix}_finish": finish, f"{prefix}_speed": speed})
        on_mem, chunk, external = array.bitmap or (None, None, None)
        row.update(bitmap_on_mem=on_mem, bitmap_chunk_size=chunk, bitmap_external_file=external)
        rows.append(row)
    return rows


_MD_COLUMNS = [
    Column("device_name", TEXT, "Array name, e.g. md0."),
    Column("status", TEXT, "active or inactive (mdstat)."),
    Column("raid_level", INTEGER, "RAID level: 0, 1, 4, 5, 6, 10; -1 linear, -4 multipath."),
    Column("size", BIGINT, "Usable size in 1 KiB blocks."),
    Column("chunk_size", BIGINT, "Chunk size in bytes."),
    Column("raid_disks", INTEGER, "Devices the array is built of when complete."),
    Column("nr_raid_disks", INTEGER, "Member devices present now, spares included."),
    Column("working_disks", INTEGER, "Members not failed."),
    Column("active_disks", INTEGER, "Members in sync and in use."),
    Column("failed_disks", INTEGER, "Failed members."),
    Column("spare_disks", INTEGER, "Spare members."),
    Column("superblock_state", TEXT, "Array state from sysfs: clean, active, degraded, readonly..."),
    Column("superblock_version", TEXT, "Metadata version, e.g. 1.2."),
    Column("superblock_update_time", BIGINT, "Last superblock update, unix seconds; NULL (not exposed by sysfs)."),
    Column("bitmap_on_mem", TEXT, "Write-intent bitmap pages in memory, e.g. 1/1 pages [4KB]."),
    Column("bitmap_chunk_size", TEXT, "Bitmap chunk size, e.g. 65536KB chunk."),
    Column("bitmap_external_file", TEXT, "External bitmap file, if any."),
]
for _prefix, _what in (
    ("recovery", "Recovery"),
    ("resync", "Resync"),
    ("reshape", "Reshape"),
    ("check_array", "Check"),
):
    _MD_COLUMNS += [
        Column(f"{_prefix}_progress", TEXT, f"{_what} progress, e.g. 8.5% (8768/102336)."),
        Column(f"{_prefix}_finish", TEXT, f"{_what} time left estimate."),
        Column(f"{_prefix}_speed", TEXT, f"{_what} speed."),
    ]
_MD_COLUMNS += [
    Column("unused_devices", TEXT, "Devices md knows but no array uses (mdstat's last line)."),
    Column("other", TEXT, "Other settings of the array's mdstat line (super 1.2, level, algorithm...)."),
]


@table(
    "md_devices",
    "Linux software RAID arrays: level, size, member counts, health and running rebuilds.",
    _MD_COLUMNS,
    examples=("SELECT device_name, raid_level, failed_disks, recovery_progress FROM md_devices",),
    cost=5,
)
def gen_md_devices(ctx):
    yield from md_device_rows(_read(), mdstat.SYS_BLOCK)


def md_drive_rows(stat, sys_root: str) -> list[dict]:
    rows = []
    for array in stat.arrays:
        members = {dev: (slot, state) for dev, slot, state in mdstat.sys_members(array.name, sys_root)}
        for name, number, flags in array.drives:
            slot, state = members.get(name, ("", ""))
            rows.append(
                {
                    "md_device_name": array.name,
                    "drive_name": f"/dev/{name}",
                    "slot": int(slot) if slot.isdigit() else (None if slot == "none" else number),
                    "state": mdstat.drive_state(state, flags),
                }
            )
    return rows


@table(
    "md_drives",
    "Member drives of each software RAID array, with their slot and state.",
    [
        Column("md_device_name", TEXT, "Array name."),
        Column("drive_name", TEXT, "Member device, e.g. /dev/sda1."),
        Column("slot", INTEGER, "Slot in the array; NULL for a spare."),
        Column("state", TEXT, "active sync, faulty, spare, writemostly..."),
    ],
    examples=("SELECT * FROM md_drives WHERE state != 'active sync'",),
    cost=10,
)
def gen_md_drives(ctx):
    yield from md_drive_rows(_read(), mdstat.SYS_BLOCK)
