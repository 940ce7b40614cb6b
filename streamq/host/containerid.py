"""Which container a process runs in, from its /proc/<pid>/cgroup.

Runtimes name the cgroup of each container after its id, each in its own way:

    docker (cgroupfs)        /docker/<id>
    docker (systemd)         /system.slice/docker-<id>.scope
    containerd (CRI)         /kubepods.slice/.../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope
    containerd (nerdctl)     /system.slice/nerdctl-<id>.scope
    CRI-O                    /kubepods.slice/.../crio-<id>.scope, /kubepods/.../pod<uid>/crio-<id>
    podman                   /machine.slice/libpod-<id>.scope[/container], /libpod_parent/libpod-<id>
    systemd-nspawn           /machine.slice/machine-<name>.scope, /machine.slice/systemd-nspawn@<name>.service
    LXC                      /lxc/<name>, /lxc.payload.<name>
    Kubernetes (cgroupfs)    /kubepods/<qos>/pod<uid>/<id>   (runtime not in the path: "cri")
    Kubernetes (v1, systemd) /system.slice/containerd.service/kubepods-<qos>-pod<uid>.slice:cri-containerd:<id>

The deepest component that names a container wins (a container in a container
is the inner one). ``<id>`` is 64 hex digits; a bare 64-hex component under no
known parent still gives the id, with no runtime. conmon's own cgroups
(``crio-conmon-``, ``libpod-conmon-``) are the runtime's, not the container's.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from . import procfs


class Container(NamedTuple):
    id: str
    runtime: str | None
    pod_uid: str | None


_HEX64 = r"[0-9a-f]{64}"
# (pattern on one path component, runtime); the id is the first group.
_SCOPES = (
    (re.compile(rf"^docker-({_HEX64})\.scope$"), "docker"),
    (re.compile(rf"^cri-containerd-({_HEX64})\.scope$"), "containerd"),
    (re.compile(rf"^nerdctl-({_HEX64})\.scope$"), "containerd"),
    (re.compile(rf"^crio-({_HEX64})(?:\.scope)?$"), "cri-o"),
    (re.compile(rf"^libpod-({_HEX64})(?:\.scope)?$"), "podman"),
    (re.compile(r"^machine-(.+)\.scope$"), "systemd-nspawn"),
    (re.compile(r"^systemd-nspawn@(.+)\.service$"), "systemd-nspawn"),
    (re.compile(r"^lxc\.payload\.(.+)$"), "lxc"),
)
_BARE_ID = re.compile(rf"^({_HEX64})$")
_SLICE_COLON = re.compile(rf"^.*\.slice:(cri-containerd|crio|docker):({_HEX64})$")
_COLON_RUNTIMES = {"cri-containerd": "containerd", "crio": "cri-o", "docker": "docker"}
_PARENT_RUNTIMES = {"docker": "docker", "lxc": "lxc", "libpod_parent": "podman"}
# Pod uids: a UUID (dashes in cgroupfs paths, underscores in systemd slice names), or
# 32 hex digits for static pods.
_POD = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})(?![0-9a-f])"
)


def parse_cgroup_path(path: str) -> Container | None:
    """The container one cgroup path names, or None."""
    parts = [p for p in path.split("/") if p]
    for depth in range(len(parts) - 1, -1, -1):
        found = _container_at(parts, depth)
        if found is not None:
            ident, runtime = found
            return Container(ident, runtime, _pod_uid(parts[: depth + 1]) if "kubepods" in path else None)
    return None


def _container_at(parts: list[str], depth: int) -> tuple[str, str | None] | None:
    part = parts[depth]
    m = _SLICE_COLON.match(part)
    if m is not None:
        return m.group(2), _COLON_RUNTIMES[m.group(1)]
    for pattern, runtime in _SCOPES:
        m = pattern.match(part)
        if m is not None:
            name = m.group(1)
            if runtime == "systemd-nspawn":
                name = _unescape_unit(name)
                if name.startswith("qemu-"):
                    return None  # a libvirt virtual machine, not a container
            return name, runtime
    parent = parts[depth - 1] if depth else ""
    if parent == "lxc":
        return part, "lxc"
    if _BARE_ID.match(part):
        if "kubepods" in parts[0] and _POD.search(parent):
            return part, "cri"
        return part, _PARENT_RUNTIMES.get(parent)
    return None


def _pod_uid(parts: list[str]) -> str | None:
    for part in reversed(parts):
        m = _POD.search(part)
        if m is not None:
            return m.group(1).replace("_", "-")
    return None


def _unescape_unit(name: str) -> str:
    """systemd escapes '-' (and other bytes) in unit names as \\xNN."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


def parse_cgroup(data: bytes) -> Container | None:
    """The container named by any hierarchy of a /proc/<pid>/cgroup file, or None."""
    for line in data.decode(errors="replace").splitlines():
        path = line.split(":", 2)[-1]
        if path != "/":
            found = parse_cgroup_path(path)
            if found is not None:
                return found
    return None


class ContainerResolver:
    """pid -> Container, one read of /proc/<pid>/cgroup each; parses are cached by the
    file's content, which thousands of processes in a few dozen cgroups share."""

    _MAX = 4096

    def __init__(self, proc: str = procfs.PROC) -> None:
        self.proc = proc
        self._parsed: dict[bytes, Container | None] = {}

    def of_pid(self, pid: int) -> Container | None:
        try:
            data = procfs.read_once(f"{self.proc}/{pid}/cgroup")
        except OSError:
            return None
        return self.of_cgroup_file(data)

    def of_cgroup_file(self, data: bytes) -> Container | None:
        try:
            return self._parsed[data]
        except KeyError:
            pass
        if len(self._parsed) >= self._MAX:
            self._parsed.clear()  # a host churning through cgroups: start over rather than grow
        found = self._parsed[data] = parse_cgroup(data)
        return found
