"""Docker containers and what they hold, from the Docker Engine API (host/dockerapi).

Values mean what osquery's docker tables mean (ids without ``sha256:``, names
with Docker's leading ``/``, ``WHERE id = 'prefix'`` finding the container
whose id starts with it and showing the prefix). Where osquery writes a
placeholder (0 or '' for what the engine did not say) these give NULL, and
process sizes are bytes (``ps`` reports KiB). No engine: no rows, one warning.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..host import procfs
from ..sql.schema import BIGINT, DOUBLE, INTEGER, TEXT, Column, QueryContext, table
from ..text import decode
from ._common import engine_rows, lazy_module

dockerapi = lazy_module("streamq.host.dockerapi")
if TYPE_CHECKING:
    from ..host.dockerapi import Engine

_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
_INSPECT_COLUMNS = (
    "pid", "path", "config_entrypoint", "started_at", "finished_at", "privileged",
    "security_options", "env_variables", "readonly_rootfs",
    *(f"{kind}_namespace" for kind in _NAMESPACES),
)  # fmt: skip
# `docker top` runs ps on the host: host pids, and the command line last because Docker
# joins the overflowing fields into the last column (a comm with spaces would shift them).
_PS_FIELDS = "pid,state,uid,gid,euid,egid,suid,sgid,rss,vsz,etimes,ppid,pgrp,nlwp,nice,user,time,pcpu,pmem,args"
_FS_CHANGE_KINDS = {0: "C", 1: "A", 2: "D"}

ID = Column("id", TEXT, "Container ID.", index=True)
REQUIRED_ID = Column("id", TEXT, "Container ID (or a unique prefix of it).", index=True, required=True)


def _containers(api: Engine, ctx: QueryContext) -> Iterator[tuple[str, dict]]:
    """(id as the query names it, container summary) for all containers or those WHERE id = ..."""
    wanted = ctx.eq("id")
    if wanted is None:
        for c in api.call("containers", all=True) or ():
            yield c["Id"], c
        return
    prefixes = [v for v in wanted if dockerapi.is_hex_prefix(v)]
    if not prefixes:
        return
    for c in api.call("containers", all=True, filters={"id": prefixes}) or ():
        key = next((p for p in prefixes if c["Id"].startswith(p.lower())), None)
        if key is not None:
            yield key, c


def _wanted_ids(ctx: QueryContext) -> list[str]:
    return [v for v in ctx.eq("id") or () if dockerapi.is_hex_prefix(v)]


@table(
    "docker_containers",
    "Docker containers, running and stopped.",
    [
        ID,
        Column("name", TEXT, "Container name, with Docker's leading '/'.", index=True),
        Column("image", TEXT, "Image (name) the container was started from."),
        Column("image_id", TEXT, "Image ID."),
        Column("command", TEXT, "Command with arguments."),
        Column("created", BIGINT, "Creation time, unix seconds."),
        Column("state", TEXT, "created, restarting, running, removing, paused, exited or dead."),
        Column("status", TEXT, "Status as Docker words it (Up 5 minutes, Exited (0) ...)."),
        Column("pid", BIGINT, "Host pid of the container's first process; 0 when not running."),
        Column("path", TEXT, "Path of the container's first process."),
        Column("config_entrypoint", TEXT, "Entrypoint, joined by ', '."),
        Column("started_at", TEXT, "Last start time as the engine gives it (RFC 3339)."),
        Column("finished_at", TEXT, "Last finish time as the engine gives it (RFC 3339)."),
        Column("privileged", INTEGER, "1 if the container is privileged."),
        Column("security_options", TEXT, "Security options, joined by ', '."),
        Column("env_variables", TEXT, "Environment variables (KEY=value), joined by ', '."),
        Column("readonly_rootfs", INTEGER, "1 if the root filesystem is read-only."),
        *(
            Column(f"{kind}_namespace", TEXT, f"Inode of the {kind} namespace (running containers).")
            for kind in _NAMESPACES
        ),
    ],
    examples=(
        "SELECT id, name, image, state FROM docker_containers",
        "SELECT name, pid FROM docker_containers WHERE state = 'running' AND privileged = 1",
    ),
    cost=100,
)
@engine_rows
def gen_docker_containers(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    names = ctx.eq("name")
    inspect = any(ctx.used(c) for c in _INSPECT_COLUMNS)
    for key, c in _containers(api, ctx):
        name = (c.get("Names") or [None])[0]
        if names is not None and name not in names:
            continue
        row = {
            "id": key,
            "name": name,
            "image": c.get("Image"),
            "image_id": dockerapi.strip_digest(c.get("ImageID")),
            "command": c.get("Command"),
            "created": c.get("Created"),
            "state": c.get("State"),
            "status": c.get("Status"),
        }
        if inspect:
            details = api.call("inspect_container", c["Id"])
            if details is None:
                continue  # removed since the listing
            row.update(_inspected(details))
        yield row


def _inspected(details: dict) -> dict:
    state = details.get("State") or {}
    host = details.get("HostConfig") or {}
    config = details.get("Config") or {}
    pid = state.get("Pid")
    row = {
        "pid": pid,
        "path": details.get("Path"),
        "config_entrypoint": ", ".join(config.get("Entrypoint") or ()),
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
        "privileged": int(bool(host.get("Privileged"))),
        "security_options": ", ".join(host.get("SecurityOpt") or ()),
        "env_variables": ", ".join(config.get("Env") or ()),
        "readonly_rootfs": int(bool(host.get("ReadonlyRootfs"))),
    }
    if pid:
        for kind in _NAMESPACES:
            row[f"{kind}_namespace"] = procfs.namespace_inode(pid, kind)
    return row


@table(
    "docker_container_labels",
    "Labels of Docker containers.",
    [ID, Column("key", TEXT, "Label key.", index=True), Column("value", TEXT, "Label value.")],
    examples=("SELECT id, key, value FROM docker_container_labels",),
    cost=100,
)
@engine_rows
def gen_docker_container_labels(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, c in _containers(api, ctx):
        for label, value in (c.get("Labels") or {}).items():
            yield {"id": key, "key": label, "value": value}


@table(
    "docker_container_envs",
    "Environment variables of Docker containers, as configured.",
    [ID, Column("key", TEXT, "Variable name."), Column("value", TEXT, "Variable value.")],
    examples=("SELECT id, key, value FROM docker_container_envs",),
    cost=100,
)
@engine_rows
def gen_docker_container_envs(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, c in _containers(api, ctx):
        details = api.call("inspect_container", c["Id"])
        for item in ((details or {}).get("Config") or {}).get("Env") or ():
            name, _, value = item.partition("=")
            yield {"id": key, "key": name, "value": value}


@table(
    "docker_container_mounts",
    "Volumes and bind mounts of Docker containers.",
    [
        ID,
        Column("type", TEXT, "Mount type: bind, volume, tmpfs..."),
        Column("name", TEXT, "Volume name (NULL for bind mounts).", index=True),
        Column("source", TEXT, "Source path on the host."),
        Column("destination", TEXT, "Path inside the container."),
        Column("driver", TEXT, "Volume driver."),
        Column("mode", TEXT, "Mount mode as given (ro, z...)."),
        Column("rw", INTEGER, "1 if mounted read-write."),
        Column("propagation", TEXT, "Mount propagation (rprivate, shared...)."),
    ],
    examples=("SELECT id, source, destination, rw FROM docker_container_mounts",),
    cost=100,
)
@engine_rows
def gen_docker_container_mounts(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, c in _containers(api, ctx):
        for m in c.get("Mounts") or ():
            yield {
                "id": key,
                "type": m.get("Type"),
                "name": m.get("Name"),
                "source": m.get("Source"),
                "destination": m.get("Destination"),
                "driver": m.get("Driver"),
                "mode": m.get("Mode"),
                "rw": int(bool(m.get("RW"))),
                "propagation": m.get("Propagation"),
            }


@table(
    "docker_container_networks",
    "The networks Docker containers are attached to.",
    [
        ID,
        Column("name", TEXT, "Network name.", index=True),
        Column("network_id", TEXT, "Network ID."),
        Column("endpoint_id", TEXT, "Endpoint ID."),
        Column("gateway", TEXT, "Gateway."),
        Column("ip_address", TEXT, "IPv4 address."),
        Column("ip_prefix_len", INTEGER, "IPv4 prefix length."),
        Column("ipv6_gateway", TEXT, "IPv6 gateway."),
        Column("ipv6_address", TEXT, "Global IPv6 address."),
        Column("ipv6_prefix_len", INTEGER, "Global IPv6 prefix length."),
        Column("mac_address", TEXT, "MAC address."),
    ],
    examples=("SELECT id, name, ip_address FROM docker_container_networks",),
    cost=100,
)
@engine_rows
def gen_docker_container_networks(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, c in _containers(api, ctx):
        for name, n in ((c.get("NetworkSettings") or {}).get("Networks") or {}).items():
            yield {
                "id": key,
                "name": name,
                "network_id": n.get("NetworkID"),
                "endpoint_id": n.get("EndpointID"),
                "gateway": n.get("Gateway"),
                "ip_address": n.get("IPAddress"),
                "ip_prefix_len": n.get("IPPrefixLen"),
                "ipv6_gateway": n.get("IPv6Gateway"),
                "ipv6_address": n.get("GlobalIPv6Address"),
                "ipv6_prefix_len": n.get("GlobalIPv6PrefixLen"),
                "mac_address": n.get("MacAddress"),
            }


@table(
    "docker_container_ports",
    "Ports Docker containers expose and publish.",
    [
        Column("id", TEXT, "Container ID.", additional=True),
        Column("type", TEXT, "Protocol: tcp, udp or sctp."),
        Column("port", INTEGER, "Port inside the container."),
        Column("host_ip", TEXT, "Host address it is published on (NULL when not published)."),
        Column("host_port", INTEGER, "Host port it is published on (NULL when not published)."),
    ],
    examples=("SELECT id, port, host_ip, host_port FROM docker_container_ports",),
    cost=100,
)
@engine_rows
def gen_docker_container_ports(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, c in _containers(api, ctx):
        for p in c.get("Ports") or ():
            yield {
                "id": key,
                "type": p.get("Type"),
                "port": p.get("PrivatePort"),
                "host_ip": p.get("IP"),
                "host_port": p.get("PublicPort"),
            }


@table(
    "docker_container_processes",
    "Processes running in a Docker container, as `docker top` lists them (host pids).",
    [
        REQUIRED_ID,
        Column("pid", BIGINT, "Process ID on the host.", index=True),
        Column("name", TEXT, "Process name (the kernel's comm)."),
        Column("cmdline", TEXT, "Command line."),
        Column("state", TEXT, "Process state letter."),
        Column("uid", BIGINT, "User ID."),
        Column("gid", BIGINT, "Group ID."),
        Column("euid", BIGINT, "Effective user ID."),
        Column("egid", BIGINT, "Effective group ID."),
        Column("suid", BIGINT, "Saved user ID."),
        Column("sgid", BIGINT, "Saved group ID."),
        Column("wired_size", BIGINT, "Bytes of unpageable memory; always 0 on Linux."),
        Column("resident_size", BIGINT, "Resident memory, bytes."),
        Column("total_size", BIGINT, "Virtual memory, bytes."),
        Column("start_time", BIGINT, "Process start, seconds since boot."),
        Column("parent", BIGINT, "Parent process ID."),
        Column("pgroup", BIGINT, "Process group."),
        Column("threads", INTEGER, "Number of threads."),
        Column("nice", INTEGER, "Nice value."),
        Column("user", TEXT, "User name."),
        Column("time", TEXT, "Cumulative CPU time, [DD-]HH:MM:SS."),
        Column("cpu", DOUBLE, "CPU use, percent."),
        Column("mem", DOUBLE, "Memory use, percent."),
    ],
    examples=("SELECT pid, name, cmdline FROM docker_container_processes WHERE id = '1234567890ab'",),
    cost=100,
)
@engine_rows
def gen_docker_container_processes(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key in _wanted_ids(ctx):
        top = api.call("top", key, ps_args=f"axwwo {_PS_FIELDS}")
        for fields in (top or {}).get("Processes") or ():
            if len(fields) == 20:
                yield _process_row(key, fields)


def _process_row(key: str, f: list[str]) -> dict:
    pid = int(f[0])
    return {
        "id": key,
        "pid": pid,
        "name": _comm(pid, f[19]),
        "cmdline": f[19],
        "state": f[1],
        "uid": int(f[2]),
        "gid": int(f[3]),
        "euid": int(f[4]),
        "egid": int(f[5]),
        "suid": int(f[6]),
        "sgid": int(f[7]),
        "wired_size": 0,
        "resident_size": int(f[8]) * 1024,
        "total_size": int(f[9]) * 1024,
        "start_time": _start_since_boot(pid, int(f[10])),
        "parent": int(f[11]),
        "pgroup": int(f[12]),
        "threads": int(f[13]),
        "nice": int(f[14]) if f[14].lstrip("-").isdigit() else None,  # '-' for realtime tasks
        "user": f[15],
        "time": f[16],
        "cpu": float(f[17]),
        "mem": float(f[18]),
    }


def _comm(pid: int, cmdline: str) -> str:
    comm = procfs.read_or_none(f"/proc/{pid}/comm")
    if comm:
        return decode(comm.rstrip(b"\n"))
    return os.path.basename(cmdline.split(" ", 1)[0])


def _start_since_boot(pid: int, elapsed: int) -> int | None:
    """From /proc/<pid>/stat (exact); from the uptime minus ps's elapsed seconds if it is gone."""
    try:
        return procfs.stat_of(pid).starttime // procfs.clock_ticks()
    except Exception:
        try:
            return int(procfs.uptime()) - elapsed
        except OSError:
            return None


@table(
    "docker_container_fs_changes",
    "Files and directories added (A), changed (C) or deleted (D) in a Docker container's filesystem.",
    [
        REQUIRED_ID,
        Column("path", TEXT, "Path inside the container."),
        Column("change_type", TEXT, "A (added), C (changed) or D (deleted)."),
    ],
    examples=("SELECT path, change_type FROM docker_container_fs_changes WHERE id = '1234567890ab'",),
    cost=100,
)
@engine_rows
def gen_docker_container_fs_changes(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key in _wanted_ids(ctx):
        for change in api.call("diff", key) or ():
            kind = _FS_CHANGE_KINDS.get(change.get("Kind"))
            if kind is not None:
                yield {"id": key, "path": change.get("Path"), "change_type": kind}
