"""docker_container_stats: one resource sample per container, from the engine's stats call.

The engine takes two samples a second apart (``pre*`` columns hold the first), so a
query costs about a second per container, as in osquery. Counters the engine does not
report on this host (cgroup v2 has no ``cache`` or ``max_usage``) are NULL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, QueryContext, table
from ._common import engine_rows, lazy_module

dockerapi = lazy_module("streamq.host.dockerapi")
if TYPE_CHECKING:
    from ..host.dockerapi import Engine


@table(
    "docker_container_stats",
    "Resource use of Docker containers; a query takes about a second per container.",
    [
        Column("id", TEXT, "Container ID (or a unique prefix of it).", index=True, required=True),
        Column("name", TEXT, "Container name.", index=True),
        Column("pids", INTEGER, "Number of processes."),
        Column("read", BIGINT, "When the sample was read, unix seconds."),
        Column("preread", BIGINT, "When the previous sample was read, unix seconds."),
        Column("interval", BIGINT, "Time between the two samples, nanoseconds."),
        Column("disk_read", BIGINT, "Bytes read from block devices."),
        Column("disk_write", BIGINT, "Bytes written to block devices."),
        Column("num_procs", INTEGER, "Number of processors (Windows engines only; 0 on Linux)."),
        Column("cpu_total_usage", BIGINT, "Total CPU time used, nanoseconds."),
        Column("cpu_kernelmode_usage", BIGINT, "CPU time in kernel mode, nanoseconds."),
        Column("cpu_usermode_usage", BIGINT, "CPU time in user mode, nanoseconds."),
        Column("system_cpu_usage", BIGINT, "The host's CPU time, nanoseconds."),
        Column("online_cpus", INTEGER, "Online CPUs."),
        Column("pre_cpu_total_usage", BIGINT, "Total CPU time at the previous sample."),
        Column("pre_cpu_kernelmode_usage", BIGINT, "Kernel mode CPU time at the previous sample."),
        Column("pre_cpu_usermode_usage", BIGINT, "User mode CPU time at the previous sample."),
        Column("pre_system_cpu_usage", BIGINT, "The host's CPU time at the previous sample."),
        Column("pre_online_cpus", INTEGER, "Online CPUs at the previous sample."),
        Column("memory_usage", BIGINT, "Memory use, bytes."),
        Column("memory_cached", BIGINT, "Page cache, bytes (cgroup v1)."),
        Column("memory_inactive_file", BIGINT, "Inactive file cache, bytes."),
        Column("memory_total_inactive_file", BIGINT, "Inactive file cache with descendants, bytes (cgroup v1)."),
        Column("memory_max_usage", BIGINT, "Peak memory use, bytes (cgroup v1)."),
        Column("memory_limit", BIGINT, "Memory limit, bytes."),
        Column("network_rx_bytes", BIGINT, "Bytes received on all interfaces."),
        Column("network_tx_bytes", BIGINT, "Bytes sent on all interfaces."),
    ],
    examples=("SELECT memory_usage, cpu_total_usage FROM docker_container_stats WHERE id = '1234567890ab'",),
    cost=100,
)
@engine_rows
def gen_docker_container_stats(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key in ctx.eq("id") or ():
        if dockerapi.is_hex_prefix(key):
            sample = api.call("stats", key, stream=False)
            if sample:
                yield stats_row(key, sample)


def stats_row(key: str, s: dict) -> dict:
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    memory = s.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    io = (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or ()
    networks = (s.get("networks") or {}).values()
    read, preread = dockerapi.parse_time(s.get("read")), dockerapi.parse_time(s.get("preread"))
    return {
        "id": key,
        "name": s.get("name"),
        "pids": (s.get("pids_stats") or {}).get("current"),
        "read": read[0] if read else None,
        "preread": preread[0] if preread else None,
        "interval": (read[0] - preread[0]) * 1_000_000_000 + read[1] - preread[1] if read and preread else None,
        "disk_read": sum(e.get("value", 0) for e in io if str(e.get("op")).lower() == "read"),
        "disk_write": sum(e.get("value", 0) for e in io if str(e.get("op")).lower() == "write"),
        "num_procs": s.get("num_procs"),
        **_cpu(cpu, ""),
        **_cpu(pre, "pre_"),
        "memory_usage": memory.get("usage"),
        "memory_cached": detail.get("cache"),
        "memory_inactive_file": detail.get("inactive_file"),
        "memory_total_inactive_file": detail.get("total_inactive_file"),
        "memory_max_usage": memory.get("max_usage"),
        "memory_limit": memory.get("limit"),
        "network_rx_bytes": sum(n.get("rx_bytes", 0) for n in networks),
        "network_tx_bytes": sum(n.get("tx_bytes", 0) for n in networks),
    }


def _cpu(stats: dict, prefix: str) -> dict:
    usage = stats.get("cpu_usage") or {}
    return {
        f"{prefix}cpu_total_usage": usage.get("total_usage"),
        f"{prefix}cpu_kernelmode_usage": usage.get("usage_in_kernelmode"),
        f"{prefix}cpu_usermode_usage": usage.get("usage_in_usermode"),
        f"{prefix}system_cpu_usage": stats.get("system_cpu_usage"),
        f"{prefix}online_cpus": stats.get("online_cpus"),
    }
