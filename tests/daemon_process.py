"""`streamq run` as a child process in its own tmp dir, with its own state file and config.

The ``daemon`` fixture makes them and stops each in a finalizer; waits are bounded.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import retry


class Daemon:
    def __init__(self, cwd: Path, config: str | None) -> None:
        self.cwd = cwd
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def write_config(self, text: str) -> None:
        (self.cwd / "streamq.toml").write_text(text)

    def start(self, *, ready: bool = True) -> Daemon:
        if self.config is not None and self.runs == 0:
            self.write_config(self.config)
        args = ["run", "-c", "streamq.toml"] if self.config is not None else ["run"]
        self.runs += 1
        self.stderr_path = self.cwd / f"stderr.{self.runs}.txt"
        with open(self.stderr_path, "w") as err, open(self.cwd / f"stdout.{self.runs}.txt", "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamq", *args], cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        if ready:  # signals before the handlers are installed would kill it the default way
            assert retry(lambda: "running" in self.stderr() or self.proc.poll() is not None, timeout=15)
            assert self.proc.poll() is None, self.stderr()
        return self

    def control(self):
        """A client of its control socket (the config must put it at ``control.sock`` in its dir)."""
        from streamq.client import Client

        return Client(str(self.cwd / "control.sock"))

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def lines(self, name: str = "out.jsonl") -> list[dict]:
        """Complete lines of a result file (a line still being written is not yet there)."""
        path = self.cwd / name
        if not path.exists():
            return []
        data = path.read_bytes()
        return [json.loads(raw) for raw in data[: data.rfind(b"\n") + 1].splitlines()]

    def of(self, query: str, name: str = "out.jsonl") -> list[dict]:
        return [item for item in self.lines(name) if item["name"] == query]


class DaemonDir:
    """`streamq run -c streamq.toml` in its own directory, started at once: the daemons a test
    module shares (fleet hosts, the control socket's daemon). Stopped by its own pid."""

    def __init__(self, directory: Path, config: str) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = directory / "streamq.toml"
        self.config.write_text(config)
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.stderr_path = self.dir / f"stderr-{time.monotonic_ns()}.txt"  # one per start
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamq", "run", "-c", str(self.config)],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_for(self, text: str, timeout: float) -> None:
        """Until ``text`` is on its stderr; it must still run."""
        assert retry(lambda: text in self.stderr() or self.proc.poll() is not None, timeout=timeout), self.stderr()
        assert self.proc.poll() is None, self.stderr()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            terminate(self.proc, sig)


def terminate(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Stop a daemon the test started: ``sig``, 10 s to exit, then SIGKILL. Its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def short_tmp(prefix: str) -> Iterator[Path]:
    """A tmp dir for a module's daemons, removed after: short, because a control socket's path
    must fit in 108 bytes, which pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path, request):
    made: list[Daemon] = []

    def make(config: str | None, *, cwd: Path | None = None) -> Daemon:
        d = Daemon(cwd or tmp_path, config)
        made.append(d)
        return d

    def cleanup():
        for d in made:
            if d.proc and d.proc.poll() is None:
                d.proc.terminate()
                try:
                    d.proc.wait(5)
                except subprocess.TimeoutExpired:
                    d.kill()

    request.addfinalizer(cleanup)
    return make


SINK = """
[control]
path = "control.sock"
[state]
path = "state.db"
[sinks.out]
type = "file"
path = "out.jsonl"
"""
