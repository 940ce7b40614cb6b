"""Linux software RAID (md): /proc/mdstat and /sys/block/md*/md.

mdstat gives the personalities, each array's members, size, health and any
running recovery/resync/reshape/check with its progress; sysfs gives the
array's level, chunk size, metadata version and each member's slot and state.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..text import decode

MDSTAT = "/proc/mdstat"
SYS_BLOCK = "/sys/block"
_ACTIONS = ("recovery", "resync", "reshape", "check")
_DRIVE = re.compile(r"^(?P<name>[^\[]+)\[(?P<number>\d+)\](?P<flags>(\([A-Z]\))*)$")
_LEVELS = {"linear": -1, "multipath": -4, "faulty": -5, "container": -100}


@dataclass
class MdArray:
    name: str
    status: str = ""
    level: str = ""
    drives: list[tuple[str, int, str]] = field(default_factory=list)  # (name, descriptor number, flags)
    size: int | None = None
    other: str = ""
    actions: dict[str, tuple[str, str | None, str | None]] = field(default_factory=dict)
    bitmap: tuple[str, str, str | None] | None = None


@dataclass
class MdStat:
    personalities: list[str] = field(default_factory=list)
    arrays: list[MdArray] = field(default_factory=list)
    unused: str = ""


def _action(text: str) -> tuple[str, str | None, str | None]:
    """ "8.5% (8768/102336) finish=0.1min speed=8768K/sec" -> (progress, finish, speed)."""
    parts = text.split()
    finish = next((p.split("=", 1)[1] for p in parts if p.startswith("finish=")), None)
    speed = next((p.split("=", 1)[1] for p in parts if p.startswith("speed=")), None)
    progress = " ".join(p for p in parts if not p.startswith(("finish=", "speed=")))
    return progress, finish, speed


def _config_line(array: MdArray, line: str) -> None:
    """ "102336 blocks super 1.2 [2/2] [UU]": size, then what lies between it and the health brackets."""
    words = line.split()
    if len(words) >= 2 and words[1] == "blocks" and words[0].isdigit():
        array.size = int(words[0])
        words = words[2:]
    brackets = [w for w in words if w.startswith("[")]
    array.other = " ".join(w for w in words if not w.startswith("[")) if brackets else " ".join(words)


def _status_line(array: MdArray, line: str) -> bool:
    for action in _ACTIONS:
        match = re.search(rf"\b{action}\s*=\s*(.*)$", line)
        if match:
            array.actions[action] = _action(match.group(1))
            return True
        match = re.search(rf"\b{action}=(\S+)", line)  # "resync=DELAYED", "resync=PENDING"
        if match:
            array.actions[action] = (match.group(1), None, None)
            return True
    if line.startswith("bitmap:"):
        parts = [p.strip() for p in line[len("bitmap:") :].split(",")]
        external = next((p.split("file:", 1)[1].strip() for p in parts[2:] if "file:" in p), None)
        array.bitmap = (parts[0], parts[1] if len(parts) > 1 else "", external)
        return True
    return False


def parse_mdstat(data: bytes) -> MdStat:
    result = MdStat()
    current: MdArray | None = None
    for raw in decode(data).splitlines():
        line = raw.strip()
        if line.startswith("Personalities :"):
            result.personalities = [p.strip("[]") for p in line.split(":", 1)[1].split()]
        elif line.startswith("unused devices:"):
            result.unused = line.split(":", 1)[1].strip()
        elif re.match(r"^md\S*\s*:", line):
            name, _, rest = line.partition(":")
            words = rest.split()
            current = MdArray(name.strip(), *(words[:2] + [""] * (2 - len(words[:2]))))
            for token in words[2:]:
                m = _DRIVE.match(token)
                if m:
                    current.drives.append((m["name"], int(m["number"]), m["flags"]))
            result.arrays.append(current)
        elif current is not None and line and current.size is None and "blocks" in line:
            _config_line(current, line)
        elif current is not None and line:
            _status_line(current, line)
    return result


def level_number(level: str) -> int | None:
    if level.startswith("raid") and level[4:].isdigit():
        return int(level[4:])
    return _LEVELS.get(level)


def sys_md(name: str, root: str = SYS_BLOCK) -> dict[str, str]:
    """The array's sysfs attributes that the tables use."""
    out = {}
    for attr in ("level", "chunk_size", "raid_disks", "array_state", "metadata_version", "degraded"):
        try:
            with open(f"{root}/{name}/md/{attr}", "rb") as f:
                out[attr] = decode(f.read()).strip()
        except OSError:
            continue
    return out


def sys_members(name: str, root: str = SYS_BLOCK) -> list[tuple[str, str, str]]:
    """(device, slot, state) of each member from /sys/block/<md>/md/dev-*."""
    base = f"{root}/{name}/md"
    try:
        entries = sorted(e for e in os.listdir(base) if e.startswith("dev-"))
    except OSError:
        return []
    members = []
    for entry in entries:
        values = []
        for attr in ("slot", "state"):
            try:
                with open(f"{base}/{entry}/{attr}", "rb") as f:
                    values.append(decode(f.read()).strip())
            except OSError:
                values.append("")
        members.append((entry[4:], values[0], values[1]))
    return members


_STATE_WORDS = {
    "in_sync": "active sync",
    "faulty": "faulty",
    "spare": "spare",
    "write_mostly": "writemostly",
    "journal": "journal",
    "failfast": "failfast",
}


def drive_state(sysfs_state: str, flags: str = "") -> str:
    """osquery's words for a member's state (md's kernel flags)."""
    words = [_STATE_WORDS[w] for w in sysfs_state.split(",") if w in _STATE_WORDS]
    if not words:
        words = ["faulty"] if "(F)" in flags else ["spare"] if "(S)" in flags else ["active sync"]
    return " ".join(words)
