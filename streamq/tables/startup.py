"""What starts at boot or at login: startup_items and systemd_units, read from the files that say so.

startup_items: systemd units linked from a target's .wants/.requires/.upholds
directory in /etc/systemd/system (or the other config directories), SysV
scripts in /etc/init.d with their /etc/rcN.d links, /etc/rc.local, XDG autostart
entries (/etc/xdg/autostart and each user's ~/.config/autostart, plus KDE's
~/.config/autostart-scripts) and cron @reboot jobs (:mod:`streamq.host.autostart`).
systemd_units: every unit file with its enablement (:mod:`streamq.host.unitfiles`).
Neither needs a running systemd, so they answer the same in a container or chroot.
"""

from __future__ import annotations

from ..sql.schema import BIGINT, TEXT, Column, table
from ._common import lazy_module

autostart = lazy_module("streamq.host.autostart")
unitfiles = lazy_module("streamq.host.unitfiles")


@table(
    "startup_items",
    "Programs and services started at boot or at login: systemd units, SysV scripts, rc.local, XDG autostart, cron @reboot.",
    [
        Column("name", TEXT, "Unit name, script name, the Name= of an autostart entry, or the program of a cron job."),
        Column("path", TEXT, "Unit file or script for units and SysV scripts; the program run for autostart and cron."),
        Column("args", TEXT, "Arguments after the program; for a systemd service its whole ExecStart= command."),
        Column("type", TEXT, "systemd unit, Startup Item (SysV script or autostart entry), rc.local or cron."),
        Column(
            "source",
            TEXT,
            "Directory or file the item was found in, e.g. /etc/systemd/system/multi-user.target.wants/.",
        ),
        Column(
            "status",
            TEXT,
            "enabled or disabled; for units that cannot load: masked, not-found, error (unreadable) or bad-setting.",
        ),
        Column("username", TEXT, "User the item runs as: the owner of the autostart entry, the cron user, or User=."),
    ],
    examples=(
        "SELECT name, type, status, source FROM startup_items",
        "SELECT name, path, args FROM startup_items WHERE type = 'systemd unit' AND status = 'enabled'",
    ),
    cost=100,
)
def gen_startup_items(ctx):
    yield from autostart.startup_items()


@table(
    "systemd_units",
    "systemd units: live states from systemd over D-Bus when it runs as PID 1, else from the unit files.",
    [
        Column("id", TEXT, "Unit name, e.g. ssh.service."),
        Column("description", TEXT, "Description= of the unit."),
        Column("load_state", TEXT, "loaded, masked, or error when the unit file cannot be read."),
        Column(
            "active_state",
            TEXT,
            "systemd's ActiveState over D-Bus; inactive when systemd is not running (or has not loaded the unit);"
            " NULL when systemd runs but its bus did not answer.",
        ),
        Column(
            "sub_state",
            TEXT,
            "systemd's SubState over D-Bus; dead when it is not running; NULL when its bus did not answer.",
        ),
        Column(
            "unit_file_state",
            TEXT,
            "enabled, enabled-runtime, disabled, static, indirect, generated, transient, masked or masked-runtime.",
        ),
        Column("following", TEXT, "Unit this one follows; only known to a running systemd."),
        Column("object_path", TEXT, "D-Bus object path systemd uses for the unit."),
        Column("job_id", BIGINT, "Queued job ID; 0 when no job is queued."),
        Column("job_type", TEXT, "Type of the queued job; NULL when none."),
        Column("job_path", TEXT, "D-Bus object path of the queued job; NULL when none."),
        Column("fragment_path", TEXT, "Path of the unit file."),
        Column("user", TEXT, "User= a service runs as; NULL when not set."),
        Column("source_path", TEXT, "SourcePath= of a generated unit (the file it was made from)."),
    ],
    examples=(
        "SELECT id, description, unit_file_state FROM systemd_units WHERE id LIKE '%.service'",
        "SELECT unit_file_state, count(*) FROM systemd_units GROUP BY 1",
    ),
    cost=300,
)
def gen_systemd_units(ctx):
    yield from unitfiles.unit_rows()
