"""startup_items: what starts at boot or at login, read from the files that say so.

systemd units linked from a target's .wants/.requires/.upholds directory in
/etc/systemd/system (or the other config directories), SysV scripts in
/etc/init.d with their /etc/rcN.d links, /etc/rc.local, XDG autostart entries
(/etc/xdg/autostart and each user's ~/.config/autostart, plus KDE's
~/.config/autostart-scripts) and cron @reboot jobs. It needs no running systemd,
so it answers the same in a container or chroot; see streamq/autostart.py.
"""

from __future__ import annotations

from ..sql.schema import TEXT, Column, table
from ._common import lazy_module

autostart = lazy_module("streamq.host.autostart")


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
