"""systemd unit files read from disk, for hosts (containers, sandboxes) where systemd is not running.

The unit_file_state rules follow systemd's own (``systemctl list-unit-files``):
masked (a link to /dev/null or an empty file), enabled when a config
directory links to the unit, else disabled / indirect / static depending on
the [Install] section. Malformed lines are skipped, as systemd itself skips
them with a warning and still loads the unit; an unreadable unit file gives a
row with load_state 'error'. Template units (``name@.service``) are left out:
systemd never loads a template itself, only its instances. Alias links
(``dbus-org.*.service``) are left out too: systemd lists a unit under its own name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..text import decode, fsdecode
from . import systemd_bus

# systemd's search order for system units: the first directory holding a name wins.
# (`systemd-analyze unit-paths` on Debian 12; /lib before /usr/lib, deduplicated when /lib is a link).
CONFIG_DIRS = (
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/etc/systemd/system",
    "/run/systemd/system",
)
GENERATOR_DIRS = ("/run/systemd/generator.early", "/run/systemd/generator", "/run/systemd/generator.late")
UNIT_DIRS = (
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
)
UNIT_SUFFIXES = frozenset(
    [
        ".service",
        ".socket",
        ".target",
        ".timer",
        ".mount",
        ".automount",
        ".swap",
        ".path",
        ".slice",
        ".scope",
        ".device",
    ]
)
_LINK_DIR_SUFFIXES = (".wants", ".requires", ".upholds")
_INSTALL_RULES = frozenset({"WantedBy", "RequiredBy", "UpheldBy", "Alias"})


def systemd_running() -> bool:
    """sd_booted(3)'s test: systemd creates /run/systemd/system when it is PID 1."""
    return os.path.isdir("/run/systemd/system") and _pid1_name() == "systemd"


def _pid1_name() -> str | None:
    try:
        with open("/proc/1/comm", "rb") as f:
            return f.read().strip().decode(errors="replace")
    except OSError:
        return None


def is_unit_name(name: str) -> bool:
    stem, dot, suffix = name.rpartition(".")
    return bool(stem) and f"{dot}{suffix}" in UNIT_SUFFIXES


def parse_unit(text: str) -> dict[tuple[str, str], list[str]]:
    """A unit file as (section, key) -> values in order; an empty value resets the list.

    Lines ending in a backslash continue on the next line; lines without "="
    or outside any section are skipped (systemd warns and ignores them).
    """
    out: dict[tuple[str, str], list[str]] = {}
    section = None
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped[:1] in ("#", ";"):
            continue  # comments are dropped even inside a continued line, as systemd does
        line = (pending + raw).strip() if pending else stripped
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "  # systemd turns the backslash into a space and keeps the next line's indent
            continue
        if not line:
            continue
        if line.startswith("["):
            section = line[1:-1].strip() if line.endswith("]") else None
            continue
        key, eq, value = line.partition("=")
        if not eq or section is None:
            continue
        values = out.setdefault((section, key.strip()), [])
        value = value.strip()
        if value:
            values.append(value)
        else:
            values.clear()
    return out


def bus_path(unit: str) -> str:
    """systemd's D-Bus object path for a unit: non-alphanumerics escaped as _xx."""
    label = "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):02x}" for ch in unit)
    return "/org/freedesktop/systemd1/unit/" + (label or "_")


def _unique_dirs(dirs: tuple[str, ...]) -> list[str]:
    seen, out = set(), []
    for d in dirs:
        real = os.path.realpath(d)
        if real not in seen and os.path.isdir(d):
            seen.add(real)
            out.append(d)
    return out


def find_units(dirs: tuple[str, ...] = UNIT_DIRS) -> dict[str, str]:
    """Unit name -> path of the file that defines it (first directory wins)."""
    found: dict[str, str] = {}
    for d in _unique_dirs(dirs):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in sorted(names):
            name = fsdecode(name)
            if name not in found and is_unit_name(name):
                found[name] = f"{d}/{name}"
    return found


def enabled_links(dirs: tuple[str, ...] = CONFIG_DIRS) -> dict[str, str]:
    """Unit name -> 'enabled' or 'enabled-runtime' for units that config directories link to.

    A link in a .wants/.requires/.upholds directory counts by its own name and by
    its target's name; a link at the top of a config directory counts by target
    (an Alias= made by `systemctl enable`).
    """
    states: dict[str, str] = {}
    for d in _unique_dirs(dirs):
        state = "enabled-runtime" if d.startswith("/run/") else "enabled"
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name.endswith(_LINK_DIR_SUFFIXES):
                try:
                    links = list(os.scandir(entry.path))
                except OSError:
                    continue
                for link in links:
                    names = [fsdecode(link.name)]
                    target = _link_target(link.path)
                    if target:
                        names.append(target)
                    for name in names:
                        states.setdefault(_template_of(name), state)
                        states.setdefault(name, state)
            elif entry.is_symlink():
                target = _link_target(entry.path)
                if target and target != fsdecode(entry.name):
                    states.setdefault(target, state)
    return states


def _link_target(path: str) -> str | None:
    try:
        return fsdecode(os.path.basename(os.readlink(path)))
    except OSError:
        return None


def _template_of(name: str) -> str:
    """getty@tty1.service -> getty@.service; other names unchanged."""
    stem, at, rest = name.partition("@")
    if not at:
        return name
    return f"{stem}@{rest[rest.rfind('.') :]}" if "." in rest else name


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return decode(f.read())
    except OSError:
        return None


def _dropins(name: str, dirs: list[str]) -> list[str]:
    """name.d/*.conf across the unit directories, by file name; earlier directories win."""
    chosen: dict[str, str] = {}
    for d in dirs:
        try:
            files = os.listdir(f"{d}/{name}.d")
        except OSError:
            continue
        for f in files:
            if f.endswith(".conf"):
                chosen.setdefault(f, f"{d}/{name}.d/{f}")
    return [chosen[f] for f in sorted(chosen)]


def unit_rows(dirs: tuple[str, ...] = UNIT_DIRS, config_dirs: tuple[str, ...] = CONFIG_DIRS) -> Iterator[dict]:
    live = systemd_running()
    states = systemd_bus.list_units() if live else None
    for row in _file_rows(dirs, config_dirs, live):
        if states is not None:
            _with_live_state(row, states.get(row["id"]))
        yield row


def _with_live_state(row: dict, state: systemd_bus.UnitState | None) -> None:
    """systemd's own view of a unit over D-Bus; a unit it has not loaded is inactive/dead."""
    if state is None:
        row.update(active_state="inactive", sub_state="dead")
        return
    row.update(
        active_state=state.active_state,
        sub_state=state.sub_state,
        load_state=state.load_state,
        following=state.following,
        object_path=state.object_path,
        job_id=state.job_id,
        job_type=state.job_type,
        job_path=state.job_path,
    )


def _file_rows(dirs: tuple[str, ...], config_dirs: tuple[str, ...], live: bool) -> Iterator[dict]:
    enabled = enabled_links(config_dirs)
    unit_dirs = _unique_dirs(dirs)
    for name, path in sorted(find_units(dirs).items()):
        if "@." in name:
            continue  # a template: only its instances are units
        target = None
        if os.path.islink(path):
            target = os.path.realpath(path)
            if target != "/dev/null" and _link_target(path) != name:
                continue  # an alias: the unit is listed under its real name
        row = {
            "id": name,
            "active_state": None if live else "inactive",
            "sub_state": None if live else "dead",
            "object_path": bus_path(name),
            "job_id": 0,
            "fragment_path": path,
        }
        text = None if target == "/dev/null" else _read_text(path)
        if target == "/dev/null" or (text is not None and not text.strip()):
            runtime = path.startswith("/run/")  # masked for this boot only
            row.update(load_state="masked", unit_file_state="masked-runtime" if runtime else "masked")
            row["fragment_path"] = "/dev/null"
            yield row
            continue
        if text is None:
            row["load_state"] = "error"
            yield row
            continue
        settings = parse_unit(text)
        for dropin in _dropins(name, unit_dirs):
            for key, values in parse_unit(_read_text(dropin) or "").items():
                settings.setdefault(key, []).extend(values)
        row.update(
            description=_last(settings, "Unit", "Description"),
            load_state="loaded",
            unit_file_state=_file_state(path, enabled.get(name), settings),
            user=_last(settings, "Service", "User") if name.endswith(".service") else None,
            source_path=_last(settings, "Unit", "SourcePath"),
        )
        yield row


def _last(settings: dict[tuple[str, str], list[str]], section: str, key: str) -> str | None:
    values = settings.get((section, key))
    return values[-1] if values else None


def _file_state(path: str, enabled: str | None, settings: dict[tuple[str, str], list[str]]) -> str:
    directory = os.path.dirname(path)
    if directory in GENERATOR_DIRS:
        return "generated"
    if directory == "/run/systemd/transient":
        return "transient"
    return enabled or _install_state(settings)


def _install_state(settings: dict[tuple[str, str], list[str]]) -> str:
    if any(settings.get(("Install", key)) for key in _INSTALL_RULES):
        return "disabled"
    if settings.get(("Install", "Also")):
        return "indirect"
    return "static"
