"""CPU and memory of an idle `streamq run` with the embedded default config.

CPU is utime+stime from /proc/<pid>/stat over the measuring window, as % of one core; RSS is
VmRSS at the end. The first --warmup seconds (start-up and the first runs of every query,
which take their baselines) are left out. Baseline, measured the same way in the same run:
an idle `python -c 'import time; time.sleep(N)'`. A second daemon with the default queries
but no event sources shows how much of the cost is the sources reacting to this host's
activity (every exec, socket and /etc change) rather than the scheduler.
Targets: < 1% of one core and < 80 MB RSS.

    .venv/bin/python bench/bench_daemon_idle.py [--seconds 60] [--warmup 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(argv: list[str], cwd: str, seconds: float, warmup: float) -> tuple[float, float, int]:
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            raise SystemExit(f"{argv} exited early: {proc.stderr.read().decode()}")
        before, started = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        used, took = cpu_seconds(proc.pid) - before, time.monotonic() - started
        rss = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -9
    return 100.0 * used / took, rss, code


QUIET = """
[control]
path = "control.sock"
[sinks.log]
type = "file"
path = "streamq-results.jsonl"
[queries.new_listening_ports]
sql = \"\"\"
SELECT DISTINCT process.name, listening.port, process.pid
FROM processes AS process JOIN listening_ports AS listening ON process.pid = listening.pid
WHERE listening.address = '0.0.0.0'
\"\"\"
interval = "30s"
[queries.kernel_modules]
sql = "SELECT name, status FROM kernel_modules"
interval = "60s"
[queries.sysctl_changes]
sql = "SELECT name, current_value FROM system_controls"
interval = "60s"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        base_cpu, base_rss, _ = measure(
            [sys.executable, "-c", f"import time; time.sleep({args.seconds + args.warmup + 5})"],
            cwd,
            args.seconds,
            args.warmup,
        )
        print(f"baseline python sleep:     {base_cpu:6.2f}% CPU  {base_rss:6.1f} MB RSS")
        cpu, rss, code = measure([sys.executable, "-m", "streamq", "run"], cwd, args.seconds, args.warmup)
        print(
            f"streamq run (default):     {cpu:6.2f}% CPU  {rss:6.1f} MB RSS  exit {code}"
            f"  ({cpu - base_cpu:+.2f} points CPU, {rss / max(base_rss, 0.1):.1f}x RSS of the baseline)"
        )
        quiet = os.path.join(cwd, "quiet")
        os.mkdir(quiet)
        with open(os.path.join(quiet, "streamq.toml"), "w") as f:
            f.write(QUIET)
        cpu2, rss2, code2 = measure(
            [sys.executable, "-m", "streamq", "run", "-c", "streamq.toml"], quiet, args.seconds, args.warmup
        )
        print(f"timed queries, no sources: {cpu2:5.2f}% CPU  {rss2:6.1f} MB RSS  exit {code2}")
    verdict = "OK" if cpu < 1.0 and rss < 80 else "OVER TARGET"
    print(f"target: < 1% of one core and < 80 MB RSS: {verdict} (measured over {args.seconds:g} s)")


if __name__ == "__main__":
    main()
