"""What starts at boot or login, read from files: systemd links, SysV rc links, rc.local,
XDG autostart entries and cron @reboot jobs. No running systemd or D-Bus is needed.

Every reader takes ``root``, a directory the paths are looked up under ("" for
the host), and reports paths as seen from inside that root. A file that cannot
be read is skipped; a unit that cannot be loaded is a row whose status says why.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator

from ..text import decode, fsdecode
from . import accounts, dirs, procfs, systemd_bus, unitfiles
from .safefile import read_regular, read_user_file
from .userfiles import crontab_files, parse_crontab

INIT_D = "/etc/init.d"
RC_LOCAL = "/etc/rc.local"
XDG_AUTOSTART = "/etc/xdg/autostart"
BOOT_RUNLEVELS = frozenset("S2345")  # Debian's default runlevels; S runs first at every boot
_RC_LINK = re.compile(r"^([SK])(\d\d)(.+)$")
_MAX_FILE = 1 << 20


def _row(name, path, args, type_, source, status, username=None) -> dict:
    return {
        "name": name,
        "path": path,
        "args": args,
        "type": type_,
        "source": source,
        "status": status,
        "username": username,
    }


def _read(path: str) -> bytes | None:
    return read_regular(path, max_bytes=_MAX_FILE)


def _executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def split_command(command: str) -> tuple[str | None, str | None]:
    """(program, rest of the line); a quoted program keeps its spaces."""
    command = command.strip()
    if command[:1] in ("'", '"'):
        end = command.find(command[0], 1)
        if end > 0:
            return command[1:end], command[end + 1 :].strip() or None
    parts = command.split(None, 1)
    if not parts:
        return None, None
    return parts[0], parts[1].strip() if len(parts) > 1 else None


# ---------------------------------------------------------------- systemd


def systemd_items(root: str = "") -> Iterator[dict]:
    """Units that a config directory's .wants/.requires/.upholds links start with their target.

    One row per unit; ``source`` is the first link directory (by name) that holds it. On the
    live host with systemd as PID 1, ``status`` is systemd's own active state over D-Bus
    (active, inactive, failed, ...); otherwise, and when the bus does not answer, the files'.
    """
    states = systemd_bus.list_units() if not root and unitfiles.systemd_running() else None
    for row in _systemd_file_items(root):
        if states is not None and row["status"] not in ("not-found", "masked"):
            state = states.get(row["name"])
            row["status"] = state.active_state if state is not None else "inactive"
        yield row


def _systemd_file_items(root: str) -> Iterator[dict]:
    config_dirs = tuple(root + d for d in unitfiles.CONFIG_DIRS)
    unit_dirs = tuple(root + d for d in unitfiles.UNIT_DIRS)
    units = unitfiles.find_units(unit_dirs)
    seen: set[str] = set()
    for directory in dict.fromkeys(config_dirs):
        for link_dir in dirs.names(directory):
            if not link_dir.endswith((".wants", ".requires", ".upholds")):
                continue
            for name in dirs.names(f"{directory}/{link_dir}"):
                name = fsdecode(name)
                if name in seen or not unitfiles.is_unit_name(name):
                    continue
                seen.add(name)
                yield _unit_row(name, f"{directory}/{link_dir}", units, unit_dirs, root)


def _unit_row(name: str, link_dir: str, units: dict[str, str], unit_dirs: tuple[str, ...], root: str) -> dict:
    source = link_dir[len(root) :] + "/"
    template = _template_of(name)
    path = units.get(name) or units.get(template) or _link_target(f"{link_dir}/{name}", root)
    if path is None:
        return _row(name, None, None, "systemd unit", source, "not-found")
    shown = path[len(root) :] if path.startswith(root) else path
    if os.path.realpath(path) == "/dev/null":
        return _row(name, shown, None, "systemd unit", source, "masked")
    data = _read(path)
    if data is None:
        return _row(name, shown, None, "systemd unit", source, "error")
    if not data.strip():
        return _row(name, shown, None, "systemd unit", source, "masked")  # an empty unit file masks too
    settings = unitfiles.parse_unit(decode(data))
    for dropin in _dropins(dict.fromkeys((template, name)), unit_dirs):
        for key, values in unitfiles.parse_unit(decode(_read(dropin) or b"")).items():
            settings.setdefault(key, []).extend(values)
    args = user = None
    status = "enabled"
    if name.endswith(".service"):
        exec_start = settings.get(("Service", "ExecStart")) or []
        args = exec_start[0].lstrip("-+!:") if exec_start else None
        user = _last(settings, "Service", "User")
        if not exec_start and not settings.get(("Service", "ExecStop")) and not settings.get(("Unit", "SuccessAction")):
            status = "bad-setting"  # systemd refuses to load such a service
    return _row(name, shown, args, "systemd unit", source, status, user)


def _link_target(link: str, root: str) -> str | None:
    """Where a link in a .wants directory points, when no unit directory holds that name."""
    try:
        target = os.readlink(link)
    except OSError:
        return None
    target = root + target if target.startswith("/") else os.path.join(os.path.dirname(link), target)
    return target if os.path.lexists(target) else None


def _template_of(name: str) -> str:
    """getty@tty1.service -> getty@.service: an instance is defined by its template's file."""
    stem, at, rest = name.partition("@")
    return f"{stem}@{rest[rest.rfind('.') :]}" if at and "." in rest else name


def _dropins(names: Iterable[str], unit_dirs: tuple[str, ...]) -> list[str]:
    """name.d/*.conf in every unit directory, the template's before the instance's."""
    out = []
    for name in names:
        for directory in unit_dirs:
            for conf in dirs.names(f"{directory}/{name}.d"):
                if conf.endswith(".conf"):
                    out.append(f"{directory}/{name}.d/{conf}")
    return out


def _last(settings: dict, section: str, key: str) -> str | None:
    values = settings.get((section, key))
    return values[-1] if values else None


# ---------------------------------------------------------------- SysV init


def rc_links(root: str = "") -> dict[str, set[str]]:
    """Script name -> runlevels whose /etc/rcN.d holds an S (start) link to it."""
    starts: dict[str, set[str]] = {}
    for level in "0123456S":
        directory = f"{root}/etc/rc{level}.d"
        for link in dirs.names(directory):
            match = _RC_LINK.match(link)
            if not match:
                continue
            try:
                script = os.path.basename(os.readlink(f"{directory}/{link}"))
            except OSError:
                script = match.group(3)  # a copy instead of a link: the name after SNN is the script's
            levels = starts.setdefault(fsdecode(script), set())
            if match.group(1) == "S":
                levels.add(level)
    return starts


def initd_items(root: str = "") -> Iterator[dict]:
    """Executable scripts in /etc/init.d; enabled when a boot runlevel starts them."""
    starts = rc_links(root)
    for name in dirs.names(root + INIT_D):
        if name.startswith(".") or name == "README" or not _executable(f"{root}{INIT_D}/{name}"):
            continue
        name = fsdecode(name)
        enabled = bool(starts.get(name, set()) & BOOT_RUNLEVELS)
        yield _row(name, f"{INIT_D}/{name}", None, "Startup Item", INIT_D + "/", "enabled" if enabled else "disabled")


def rc_local_items(root: str = "") -> Iterator[dict]:
    """/etc/rc.local runs at boot (rc-local.service or SysV rc) only when executable."""
    if os.path.isfile(root + RC_LOCAL):
        status = "enabled" if _executable(root + RC_LOCAL) else "disabled"
        yield _row("rc.local", RC_LOCAL, None, "rc.local", RC_LOCAL, status)


# ---------------------------------------------------------------- XDG autostart


def parse_desktop_entry(data: bytes) -> dict[str, str]:
    """Keys of the [Desktop Entry] group (untranslated keys only)."""
    out: dict[str, str] = {}
    group = None
    for raw in decode(data).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
            continue
        key, eq, value = line.partition("=")
        if eq and group == "Desktop Entry" and "[" not in key:
            out.setdefault(key.strip(), value.strip())
    return out


def desktop_row(entry: dict[str, str], filename: str, source: str, username: str | None) -> dict:
    program, args = split_command(entry.get("Exec", ""))
    disabled = (
        entry.get("Hidden", "").lower() == "true" or entry.get("X-GNOME-Autostart-enabled", "").lower() == "false"
    )
    name = entry.get("Name") or filename
    return _row(name, program, args, "Startup Item", source, "disabled" if disabled else "enabled", username)


def xdg_items(root: str = "", users: Iterable[accounts.User] | None = None) -> Iterator[dict]:
    """The system's and each user's autostart entries, plus KDE's per-user autostart scripts."""
    for filename in dirs.names(root + XDG_AUTOSTART):
        if filename.endswith(".desktop"):
            data = _read(f"{root}{XDG_AUTOSTART}/{filename}")
            if data is not None:
                yield desktop_row(parse_desktop_entry(data), fsdecode(filename), XDG_AUTOSTART + "/", None)
    homes: set[str] = set()
    for user in accounts.read_users(root) if users is None else users:
        if user.home in homes or not user.home.startswith("/"):
            continue
        homes.add(user.home)
        yield from _user_autostart(root, user)


def _user_autostart(root: str, user: accounts.User) -> Iterator[dict]:
    home = user.home.rstrip("/")
    items_dir = f"{home}/.config/autostart"
    for filename in dirs.names(root + items_dir):
        if filename.endswith(".desktop"):
            data = read_user_file(f"{root}{items_dir}/{fsdecode(filename)}", user.uid)  # a user may link it anywhere
            if data is not None:
                yield desktop_row(parse_desktop_entry(data), fsdecode(filename), items_dir + "/", user.name)
    scripts_dir = f"{home}/.config/autostart-scripts"
    for filename in dirs.names(root + scripts_dir):
        path = f"{scripts_dir}/{fsdecode(filename)}"
        if _executable(root + path):
            yield _row(fsdecode(filename), path, None, "Startup Item", scripts_dir + "/", "enabled", user.name)


# ---------------------------------------------------------------- cron @reboot


def cron_items(root: str = "") -> Iterator[dict]:
    """@reboot jobs; system crontabs name the user in the line, users' crontabs by their file name."""
    for path in crontab_files(root):
        data = procfs.read_or_none(root + path)
        if not data:
            continue
        system = not path.startswith("/var/spool/")
        for job in parse_crontab(data):
            if job[0] != "@reboot":
                continue
            command = job[6] or ""
            if system:
                user_and_command = command.split(None, 1)
                username = user_and_command[0] if user_and_command else None
                command = user_and_command[1] if len(user_and_command) > 1 else ""
            else:
                username = os.path.basename(path)
            program, args = split_command(command)
            name = os.path.basename(program) if program else "@reboot"
            yield _row(name, program, args, "cron", path, "enabled", username or None)


def startup_items(root: str = "") -> Iterator[dict]:
    yield from systemd_items(root)
    yield from initd_items(root)
    yield from rc_local_items(root)
    yield from xdg_items(root)
    yield from cron_items(root)
