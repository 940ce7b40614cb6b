"""What the fleet benchmarks (bench_fleet.py, bench_fleet_push.py) share: a private mosquitto on a
free port (tests/mqtt_broker.py's) and daemons with a [fleet] section, each in its own directory,
stopped by pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mqtt_broker import start_broker  # the tests' private mosquitto, as bench_event_to_mqtt uses

KEY = "bench key"


def wait(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not start within {seconds}s")
        time.sleep(0.05)


def start_daemon(root: Path, host: str, url: str, *, accept_config: bool = False) -> tuple[subprocess.Popen, Path]:
    """A daemon answering fleet queries as ``host``; ``accept_config``: it also takes pushed
    fragments (and has a file sink for their queries)."""
    d = root / host
    d.mkdir()
    config = (
        f'[host]\nidentifier = "{host}"\n[state]\npath = "{d}/state.db"\n[control]\npath = "{d}/run/control.sock"\n'
    )
    if accept_config:
        config += f'[sinks.out]\ntype = "file"\npath = "{d}/out.jsonl"\n'
    config += f'[fleet]\nurl = "{url}"\nkey = "{KEY}"\n' + ("accept_config = true\n" if accept_config else "")
    (d / "bench.toml").write_text(config)
    err = d / "stderr.txt"
    with open(err, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamq", "run", "-c", "bench.toml"],
            cwd=d,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=f,
        )
    return proc, err


@contextlib.contextmanager
def running_fleet(prefix: str, count: int, *, accept_config: bool = False):
    """A private broker and ``count`` daemons (hosts h00, h01, ...) that answer fleet requests:
    yields (its tmp dir, url, procs). A process appended to ``procs`` is stopped with them at the end."""
    broker = start_broker()
    url = broker.url
    root = Path(tempfile.mkdtemp(prefix=prefix))
    procs: list[subprocess.Popen] = []
    try:
        hosts = [f"h{i:02d}" for i in range(count)]
        started = [start_daemon(root, h, url, accept_config=accept_config) for h in hosts]
        procs.extend(p for p, _ in started)
        for proc, err in started:
            wait(lambda e=err, p=proc: "fleet: answering" in e.read_text() or p.poll() is not None, 60, "a daemon")
            if proc.poll() is not None:
                sys.exit(f"a daemon exited: {err.read_text()}")
        yield root, url, procs
    finally:
        for proc in reversed(procs):
            stop(proc)
        broker.stop()  # last: the daemons leave it their offline messages
        shutil.rmtree(root, ignore_errors=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


# -- timing --------------------------------------------------------------------------------------


def timed(make, n: int, gap: float) -> list[float]:
    async def run() -> list[float]:
        for _ in range(3):
            await make()
        out = []
        for _ in range(n):
            await asyncio.sleep(gap)
            t0 = time.perf_counter()
            await make()
            out.append(time.perf_counter() - t0)
        return out

    return asyncio.run(run())


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1e3
