"""systemd's live unit states over D-Bus (org.freedesktop.systemd1.Manager.ListUnits).

Only a running systemd knows whether a unit is active; unit files say what is
installed and enabled. Rare and slow next to /proc reads (one round trip per
query), so a well-kept client does the protocol: jeepney, pure Python and
blocking, which fits a table generator on the SQL thread (dbus-fast is built
for an asyncio loop). None means the bus did not answer: callers fall back to
the unit files.
"""

from __future__ import annotations

from typing import NamedTuple

_SYSTEMD = "org.freedesktop.systemd1"
_MANAGER = "org.freedesktop.systemd1.Manager"


class UnitState(NamedTuple):
    description: str
    load_state: str
    active_state: str
    sub_state: str
    following: str | None
    object_path: str
    job_id: int
    job_type: str | None
    job_path: str | None


def list_units(timeout: float = 2.0) -> dict[str, UnitState] | None:
    """Every unit systemd has loaded, by name; None when the system bus or systemd does not answer."""
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
    except ImportError:
        return None
    address = DBusAddress("/org/freedesktop/systemd1", bus_name=_SYSTEMD, interface=_MANAGER)
    try:
        with open_dbus_connection(bus="SYSTEM") as connection:
            reply = connection.send_and_get_reply(new_method_call(address, "ListUnits"), timeout=timeout)
    except Exception:  # no bus socket, access denied, timeout, an error reply: the files answer instead
        return None
    if not reply.body or not isinstance(reply.body[0], list):
        return None
    return {unit[0]: _state(unit) for unit in reply.body[0]}


def _state(unit: tuple) -> UnitState:
    # ListUnits: a(ssssssouso) = name, description, load, active, sub, following, path, job id, type, path
    _name, description, load, active, sub, following, path, job_id, job_type, job_path = unit
    return UnitState(
        description,
        load,
        active,
        sub,
        following or None,
        path,
        job_id,
        job_type or None,
        job_path if job_id else None,
    )
