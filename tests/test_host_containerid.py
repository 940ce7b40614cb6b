"""Container ids from /proc/<pid>/cgroup: the runtimes' real path formats, then live processes."""

from __future__ import annotations

import os

import pytest
from docker_engine import docker_engine  # noqa: F401 - the fixture

from streamq.host.containerid import Container, ContainerResolver, parse_cgroup

ID = "8bf1cd10ab036e623bd0237af8feaf4bea0512ad07094be4a8e02bafec7e15aa"
INNER = "0f3c6a4e1d2b8c7a" * 4
POD = "8a4a7f0c-1f40-4d5e-9b5e-0123456789ab"
POD_ = POD.replace("-", "_")

# Whole /proc/<pid>/cgroup files as each runtime leaves them (v1 hybrid, v2 unified).
CASES = [
    (  # Debian's docker.io on a cgroup v1 host (cgroupfs driver), as captured on this machine
        "docker, cgroup v1",
        f"12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/docker/{ID}\n",
        Container(ID, "docker", None),
    ),
    ("docker, systemd driver", f"0::/system.slice/docker-{ID}.scope\n", Container(ID, "docker", None)),
    ("docker in docker", f"0::/docker/{ID}/docker/{INNER}\n", Container(INNER, "docker", None)),
    (
        "Kubernetes + containerd, systemd, v2",
        f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_}.slice/cri-containerd-{ID}.scope\n",
        Container(ID, "containerd", POD),
    ),
    (
        "Kubernetes + containerd, systemd, v1",
        f"11:memory:/system.slice/containerd.service/kubepods-burstable-pod{POD_}.slice:cri-containerd:{ID}\n"
        "1:name=systemd:/system.slice/containerd.service\n",
        Container(ID, "containerd", POD),
    ),
    (
        "Kubernetes, cgroupfs driver (runtime not in the path)",
        f"4:memory:/kubepods/burstable/pod{POD}/{ID}\n0::/\n",
        Container(ID, "cri", POD),
    ),
    (
        "Kubernetes static pod (32-hex uid)",
        f"0::/kubepods/besteffort/pod0123456789abcdef0123456789abcdef/{ID}\n",
        Container(ID, "cri", "0123456789abcdef0123456789abcdef"),
    ),
    (
        "CRI-O, systemd",
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/crio-{ID}.scope\n",
        Container(ID, "cri-o", POD),
    ),
    ("CRI-O, cgroupfs", f"0::/kubepods/burstable/pod{POD}/crio-{ID}\n", Container(ID, "cri-o", POD)),
    (
        "CRI-O's conmon is not the container",
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/crio-conmon-{ID}.scope\n",
        None,
    ),
    ("podman rootful, v2", f"0::/machine.slice/libpod-{ID}.scope/container\n", Container(ID, "podman", None)),
    (
        "podman rootless",
        f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n",
        Container(ID, "podman", None),
    ),
    ("podman, cgroupfs", f"0::/libpod_parent/libpod-{ID}\n", Container(ID, "podman", None)),
    ("podman's conmon", f"0::/machine.slice/libpod-conmon-{ID}.scope\n", None),
    ("nerdctl", f"0::/system.slice/nerdctl-{ID}.scope\n", Container(ID, "containerd", None)),
    (
        "systemd-nspawn, machined scope",
        "0::/machine.slice/machine-debian\\x2dtest.scope/payload/system.slice/cron.service\n",
        Container("debian-test", "systemd-nspawn", None),
    ),
    (
        "systemd-nspawn, old unit name",
        "1:name=systemd:/machine.slice/systemd-nspawn@web.service/system.slice/sshd.service\n",
        Container("web", "systemd-nspawn", None),
    ),
    ("a libvirt VM is no container", "0::/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt/vcpu0\n", None),
    ("LXC 4+", "0::/lxc.payload.web01/init.scope\n", Container("web01", "lxc", None)),
    ("LXC, v1", "4:memory:/lxc/web01\n", Container("web01", "lxc", None)),
    ("a bare id under an unknown parent", f"0::/my-parent/{ID}\n", Container(ID, None, None)),
    ("host: init", "0::/init.scope\n", None),
    ("host: a service", "0::/system.slice/ssh.service\n", None),
    ("host: a login session", "0::/user.slice/user-1000.slice/session-3.scope\n", None),
    (  # this machine's own sandbox: 32 hex digits are no container id
        "a 32-hex cgroup name",
        "4:memory:/process_api/745e850e8338bdf01671685e7aacd32b\n0::/\n",
        None,
    ),
    ("nothing", "", None),
]


@pytest.mark.parametrize(("label", "data", "expected"), CASES, ids=[c[0] for c in CASES])
def test_cgroup_formats(label, data, expected):
    assert parse_cgroup(data.encode()) == expected, label


def test_resolver_caches_by_file_content():
    resolver = ContainerResolver()
    data = f"0::/docker/{ID}\n".encode()
    first = resolver.of_cgroup_file(data)
    assert first == Container(ID, "docker", None)
    assert resolver.of_cgroup_file(bytes(data)) is first  # parsed once


def test_host_processes_are_in_no_container():
    # This test process and its parent run on the host: no container in their cgroup.
    resolver = ContainerResolver()
    assert resolver.of_pid(os.getpid()) is None
    assert resolver.of_pid(1) is None or os.path.exists("/.dockerenv")
    assert resolver.of_pid(2**22 + 7) is None  # no such process


def test_live_container_processes(docker_engine):  # noqa: F811 - the imported fixture
    resolver = ContainerResolver()
    for name, full in docker_engine.containers.items():
        pid = int(docker_engine.docker("inspect", "-f", "{{.State.Pid}}", name))
        if pid:
            assert resolver.of_pid(pid) == Container(full, "docker", None), name
    # A process started by `docker exec` is in the container too.
    docker_engine.docker("exec", "sq-locked", "sh", "-c", "sleep 31 &")
    top = docker_engine.docker("top", "sq-locked", "-o", "pid,args").splitlines()[1:]
    pids = [int(line.split(None, 1)[0]) for line in top if line.split(None, 1)[1].strip() == "sleep 31"]
    assert pids, top
    assert resolver.of_pid(pids[0]) == Container(docker_engine.containers["sq-locked"], "docker", None)
