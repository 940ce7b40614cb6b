"""Built-in tables, one module per family.

Each module declares its tables with :func:`streamq.table` at import time;
the same decorator and the ``streamq.tables`` entry-point group serve plugins.
"""

from __future__ import annotations

import importlib

BUILTIN_MODULES = (
    "streamq.tables.clock",
    "streamq.tables.processes",
    "streamq.tables.network",
    "streamq.tables.etcfiles",
    "streamq.tables.sockets",
    "streamq.tables.users",
    "streamq.tables.user_files",
    "streamq.tables.system",
    "streamq.tables.resources",
    "streamq.tables.kernel",
    "streamq.tables.devices",
    "streamq.tables.firmware",
    "streamq.tables.disks",
    "streamq.tables.files",
    "streamq.tables.packages",
    "streamq.tables.browsers",
    "streamq.tables.certs",
    "streamq.tables.startup",
    "streamq.tables.docker_containers",
    "streamq.tables.docker_stats",
    "streamq.tables.docker_engine",
    "streamq.tables.events",
    "streamq.tables.audit_events",
    "streamq.tables.meta",
    "streamq.tables.fleet_config",
    "streamq.tables.ipc",
    "streamq.tables.netconf",
    "streamq.tables.content",
    "streamq.tables.ssh",
    "streamq.tables.package_files",
    "streamq.tables.web",
    "streamq.tables.memory_hardware",
    "streamq.tables.osquery_meta",
    "streamq.tables.mac_policy",
    "streamq.tables.md",
    "streamq.tables.editors",
    "streamq.tables.cloud",
    "streamq.tables.cpu_registers",
    "streamq.tables.config_trees",
    "streamq.tables.security_agents",
)


def load_builtin() -> None:
    for name in BUILTIN_MODULES:
        importlib.import_module(name)
