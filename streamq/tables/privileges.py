"""What a table cannot see without root, and what an event source's fallback costs.

The CLI prints one note per command naming the tables a query read whose answers are
incomplete for this user (streamq.cli.notes); these are the words it uses.
"""

from __future__ import annotations

WITHOUT_ROOT: dict[str, str] = {
    "shadow": "/etc/shadow is root's only: no rows",
    "sudoers": "the sudoers files are root's only: no rows",
    "processes": "other users' processes lack path, cwd, root and I/O counters",
    "process_events": "other users' processes lack path and cwd",
    "socket_events": "sockets of other users' processes have no pid or path",
    "process_envs": "other users' processes are missing",
    "process_open_files": "other users' processes are missing",
    "process_open_sockets": "other users' processes are missing",
    "process_memory_map": "other users' processes are missing",
    "process_namespaces": "other users' processes are missing",
    "listening_ports": "sockets of other users' processes have no pid",
    "cpu_info": "SMBIOS is root's only: no rows",
    "smbios_tables": "SMBIOS is root's only: no rows",
    "acpi_tables": "the ACPI tables are root's only: no rows",
    "intel_me_info": "/dev/mei0 is root's only: no rows",
    "iptables": "reading the rules needs CAP_NET_ADMIN: no rows",
    "authorized_keys": "other users' home directories may be unreadable",
    "known_hosts": "other users' home directories may be unreadable",
    "shell_history": "other users' home directories may be unreadable",
    "crontab": "other users' crontabs (/var/spool/cron) are root's only",
    "suid_bin": "directories this user cannot read are skipped",
    "disk_encryption": "some device-mapper details need root",
}

# A source running on its fallback, and what that costs a reader of its table.
FALLBACK_COST: dict[str, str] = {
    "process_events": (
        "a process that lives less than the poll interval is missed, and a short one may lack its command line"
    ),
}
