"""A private Docker engine for the tests, and a few containers to look at.

``dockerd`` (Debian's docker.io) runs in its own network and mount namespaces
(``unshare --net --mount``), with its own data root, exec root, pidfile and
socket under a temp dir, no default bridge and no iptables rules: the host's
networking, mounts and any system engine are never touched, and every mount the
engine makes goes away with its namespace. The image is built offline with
``docker import`` from a root filesystem holding Debian's static busybox.

Import the ``docker_engine`` fixture (session-scoped) into a test module; it
skips with the reason where dockerd cannot start here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
IMAGE = "streamq-test/busybox:1"
APPLETS = ("sh", "sleep", "true", "touch", "cat", "id", "ls", "echo", "kill", "pkill", "nc")


@dataclass
class Engine:
    """A running private engine: its socket, and what the fixture made in it."""

    root: Path
    process: subprocess.Popen
    containers: dict[str, str] = field(default_factory=dict)  # name -> full id
    image_id: str = ""

    @property
    def socket(self) -> str:
        return str(self.root / "docker.sock")

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = True) -> str:
        """Run the docker CLI against this engine; its stdout."""
        docker = shutil.which("docker")
        assert docker, "docker CLI missing"
        result = subprocess.run(
            [docker, "-H", f"unix://{self.socket}", *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.decode().strip()}")
        return result.stdout.decode()

    def json(self, *args: str):
        return json.loads(self.docker(*args))

    def json_lines(self, *args: str) -> list[dict]:
        return [json.loads(line) for line in self.docker(*args).splitlines() if line.strip()]


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the private dockerd needs root"
    for tool, path in (("dockerd", DOCKERD), ("busybox", BUSYBOX)):
        if not os.path.exists(path):
            return f"{tool} is not installed (Debian: docker.io, busybox-static)"
    for tool in ("docker", "unshare", "ip", "ps"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def start_engine() -> Engine:
    root = Path(tempfile.mkdtemp(prefix="sq-docker-"))
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed in stop_engine
    # containerd takes letters and digits joined by single '.', '_' or '-': mkdtemp's random part
    # may hold '_' next to the '-' (sq-docker-_ab...), so the namespace keeps only the alphanumerics.
    namespace = "sq" + "".join(c for c in root.name if c.isalnum())
    command = (
        f"ip link set lo up && exec {DOCKERD} --data-root {root}/data --exec-root {root}/exec"
        f" --pidfile {root}/docker.pid -H unix://{root}/docker.sock --bridge=none --iptables=false"
        " --ip6tables=false --ip-forward=false --ip-masq=false --userland-proxy=false"
        f" --containerd-namespace {namespace} --containerd-plugins-namespace {namespace}-plugins"
    )
    process = subprocess.Popen(
        ["unshare", "--net", "--mount", "--fork", "--", "sh", "-c", command],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    engine = Engine(root, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if (root / "docker.sock").exists() and engine.docker("version", check=False, timeout=10):
            return engine
        time.sleep(0.2)
    tail = (root / "dockerd.log").read_text(errors="replace").strip().splitlines()[-3:]
    stop_engine(engine)
    pytest.skip(f"dockerd did not start here: {' | '.join(tail) or 'no output'}")


def stop_engine(engine: Engine) -> None:
    """Remove what the tests made, stop dockerd by its pid, delete the temp dir."""
    if engine.process.poll() is None:
        for name in engine.containers:
            engine.docker("rm", "-f", "-v", name, check=False)
        engine.docker("volume", "rm", "-f", "sq-volume", check=False)
        engine.docker("network", "rm", "sq-net", check=False)
        engine.docker("rmi", "-f", IMAGE, check=False)
        _terminate(engine)
    if not _mounted_under(engine.root):  # never delete through a mount that outlived its namespace
        shutil.rmtree(engine.root, ignore_errors=True)


def _terminate(engine: Engine) -> None:
    """SIGTERM to dockerd (it stops its containerd); unshare exits with it. SIGKILL to the
    process group (unshare's session: dockerd, containerd) if that takes too long."""
    try:
        pid = int((engine.root / "docker.pid").read_text())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        os.killpg(engine.process.pid, signal.SIGTERM)
    try:
        engine.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(engine.process.pid, signal.SIGKILL)
        engine.process.wait(timeout=10)


def _mounted_under(root: Path) -> bool:
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4].startswith(prefix) for line in f)


def build_image(engine: Engine) -> None:
    rootfs = engine.root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "tmp").mkdir()
    shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True).stdout
    out = engine.docker(
        "import",
        "-c",
        "LABEL org.streamq.test=image",
        "-c",
        "ENV IMAGE_VAR=from-image",
        "-c",
        'CMD ["/bin/sh"]',
        "-m",
        "streamq test image",
        "-",
        IMAGE,
        input=tar,
    )
    engine.image_id = out.strip().removeprefix("sha256:")


def make_containers(engine: Engine) -> None:
    """web: labels, env, a published port, a volume and a read-only bind mount, running;
    no process listens anywhere (no userland proxy either), so tables that compare the
    host's listeners with ss(8) meanwhile see nothing of this engine;
    locked: read-only rootfs, no-new-privileges, no network, running; done: exited."""
    bind = engine.root / "bind"
    bind.mkdir()
    (bind / "hello.txt").write_text("hello\n")
    engine.docker("network", "create", "--label", "team=blue", "--label", "tier=test", "sq-net")
    engine.docker("volume", "create", "--label", "keep=no", "--label", "owner=streamq", "sq-volume")
    web = engine.docker(
        "run", "-d", "--name", "sq-web", "--label", "app=web", "--label", "env=test",
        "-e", "GREETING=hello world", "-e", "EMPTY=", "-p", "127.0.0.1:18080:80/tcp",
        "--network", "sq-net", "-v", "sq-volume:/data", "-v", f"{bind}:/bind:ro",
        IMAGE, "sh", "-c", "touch /tmp/made-here; exec sleep 3600",
    )  # fmt: skip
    engine.containers["sq-web"] = web.strip()
    locked = engine.docker(
        "run", "-d", "--name", "sq-locked", "--read-only", "--security-opt", "no-new-privileges",
        "--network", "none", IMAGE, "sleep", "3600",
    )  # fmt: skip
    engine.containers["sq-locked"] = locked.strip()
    engine.docker("run", "--name", "sq-done", "--network", "none", IMAGE, "true")
    engine.containers["sq-done"] = engine.docker("inspect", "-f", "{{.Id}}", "sq-done").strip()


@pytest.fixture(scope="session")
def docker_engine():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    engine = start_engine()
    try:
        build_image(engine)
        make_containers(engine)
        yield engine
    finally:
        stop_engine(engine)
