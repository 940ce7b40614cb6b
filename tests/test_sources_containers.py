"""Container ids on process and socket rows, against the private Docker engine.

process_events: a `docker exec` shows its container in the exec row itself (and in
the exit row). socket_events: a listener whose process sits in a container's
cgroup (moved there as runc moves an exec'd process) names that container.
process_open_sockets and processes: a container's processes carry its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
import sys
import time

import pytest
from docker_engine import docker_engine  # noqa: F401 - the fixture
from source_harness import rows
from source_harness import running as started
from test_sources_process import DEFAULTS, needs_connector

from conftest import until
from streamq.ring import Rings
from streamq.sources.process import ProcessSource
from streamq.sources.socket import SocketSource

until = functools.partial(until, interval=0.02)


@contextlib.asynccontextmanager
async def running(source_class, table: str, options: dict, ready):
    async with started(source_class(table, options, Rings(capacity=100_000, max_age=None)), ready) as source:
        await asyncio.sleep(0.1)
        yield source


def container_pid(engine, name: str) -> int:
    return int(engine.docker("inspect", "-f", "{{.State.Pid}}", name))


@needs_connector
async def test_docker_exec_row_names_its_container(docker_engine):  # noqa: F811
    locked = docker_engine.containers["sq-locked"]
    marker = f"sq-exec-{os.getpid()}"
    async with running(
        ProcessSource, "process_events", {**DEFAULTS, "mode": "netlink"}, lambda s: s.status.mode
    ) as src:
        await asyncio.to_thread(docker_engine.docker, "exec", "sq-locked", "sh", "-c", f"echo {marker} >/dev/null")

        def inside():
            return [r for r in rows(src, action="exec") if (r.get("cmdline") or "").startswith(f"sh -c echo {marker}")]

        execs = await until(inside)
        assert len(execs) == 1, rows(src, action="exec")[-10:]
        row = execs[0]
        assert (row["container_id"], row["container_runtime"], row["pod_uid"]) == (locked, "docker", None)
        assert row["path"].endswith("/busybox")  # the container's binary, seen from the host
        exits = await until(lambda: rows(src, action="exit", pid=row["pid"]))
        assert exits and exits[0]["container_id"] == locked
        # The docker CLI that asked for it runs on the host: its rows name no container.
        cli = [r for r in rows(src, action="exec") if marker in (r.get("cmdline") or "") and r is not row]
        assert cli and all(r.get("container_id") is None for r in cli), cli


def _cgroup_procs_of(pid: int) -> str:
    """A cgroup.procs file of ``pid``'s cgroup: the unified hierarchy's, else the pids controller's."""
    with open(f"/proc/{pid}/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f]
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split(" ", 2)
            if fstype in ("cgroup", "cgroup2"):
                key = "0" if fstype == "cgroup2" else ("pids" if "pids" in options.split(",") else None)
                if key is not None:
                    mounts.setdefault(key, left.split()[4])
    for hierarchy, controllers, path in entries:
        key = "0" if hierarchy == "0" else ("pids" if "pids" in controllers.split(",") else None)
        if key in mounts and path != "/":
            return f"{mounts[key]}{path}/cgroup.procs"
    pytest.skip(f"no writable cgroup hierarchy found for pid {pid}")


# Listens once told to (after the source's baseline), prints its port, waits for EOF.
_LISTENER = (
    "import socket, sys; sys.stdin.readline(); s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
    "print(s.getsockname()[1], flush=True); sys.stdin.read()"
)


async def test_socket_row_names_the_container_of_its_process(docker_engine):  # noqa: F811
    web = docker_engine.containers["sq-web"]
    procs = _cgroup_procs_of(container_pid(docker_engine, "sq-web"))
    child = subprocess.Popen(
        [sys.executable, "-c", _LISTENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        with open(procs, "w") as f:
            f.write(str(child.pid))  # what runc does for `docker exec`
        async with running(SocketSource, "socket_events", {"interval": 0.05}, lambda s: s.polls >= 1) as src:
            child.stdin.write("listen\n")
            child.stdin.flush()
            port = int(await asyncio.to_thread(child.stdout.readline))
            found = await until(lambda: rows(src, action="listen", local_port=port))
            assert found, rows(src)[-5:]
            row = found[0]
            assert row["pid"] == child.pid
            assert (row["container_id"], row["container_runtime"], row["pod_uid"]) == (web, "docker", None)
    finally:
        child.kill()
        child.wait(10)


def test_process_open_sockets_and_processes_name_containers(docker_engine, conn):  # noqa: F811
    locked = docker_engine.containers["sq-locked"]
    docker_engine.docker("exec", "-d", "sq-locked", "nc", "-l", "-p", "5555")
    try:

        def listener():
            return conn.query(
                "SELECT pid, local_port, container_id, container_runtime FROM process_open_sockets "
                "WHERE container_id = ? AND local_port = 5555",
                (locked,),
            )

        found = []
        deadline = time.monotonic() + 10
        while not found and time.monotonic() < deadline:
            found = listener()
            time.sleep(0.05)
        top = docker_engine.docker("top", "sq-locked", "-o", "pid,args").splitlines()[1:]
        nc_pids = [int(line.split()[0]) for line in top if line.split(None, 1)[1].startswith("nc -l")]
        assert [r["pid"] for r in found] == nc_pids and found[0]["container_runtime"] == "docker"
        in_container = conn.query("SELECT pid FROM processes WHERE container_id = ?", (locked,))
        assert sorted(r["pid"] for r in in_container) == sorted(int(line.split()[0]) for line in top)
        host = conn.query("SELECT container_id FROM processes WHERE pid = ?", (os.getpid(),))
        assert host == [{"container_id": None}]
    finally:
        docker_engine.docker("exec", "sq-locked", "pkill", "nc", check=False)
