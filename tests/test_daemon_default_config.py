"""The embedded default config does not cry wolf: after its baseline an idle host's sysctls and kernel
modules give no line, changing one setting gives exactly one, and a listener keeps quiet once seen.

The config is the embedded one with its 60 s intervals cut to 2 s (the SQL is the same), so
"two of its intervals" take seconds. This machine is shared: other tests open ports and run
programs, so the listener check is that nothing already seen fires again (dedup), not silence.
"""

from __future__ import annotations

import subprocess

import pytest
from daemon_process import Daemon

from conftest import is_root, retry
from streamq.daemon.configuration import default_config_text

SETTING = "kernel.printk_ratelimit"  # rate of kernel log messages: harmless to nudge and restore
INTERVAL = 2.0


def config(tmp_path) -> str:
    text = default_config_text().replace('interval = "60s"', f'interval = "{INTERVAL:g}s"')
    assert text.count(f'interval = "{INTERVAL:g}s"') == 2  # sysctl_changes and kernel_modules
    return text + f'\n[control]\npath = "{tmp_path}/control.sock"\n'


def runs(d: Daemon, query: str) -> int:
    return len({line["counter"] for line in d.of(query, "streamq-results.jsonl")})


def read_setting() -> str:
    return subprocess.run(["sysctl", "-n", SETTING], capture_output=True, text=True, check=True).stdout.strip()


def test_quiet_after_the_baseline_and_one_line_per_setting_changed(tmp_path, daemon):
    d = daemon(config(tmp_path)).start()
    of = lambda query: d.of(query, "streamq-results.jsonl")  # noqa: E731
    assert retry(lambda: of("sysctl_changes") and of("kernel_modules"), timeout=30), d.stderr()
    baseline = {line["counter"] for line in of("sysctl_changes")}
    assert baseline == {0} and len(of("sysctl_changes")) > 100  # the baseline: every setting once
    names = {line["columns"]["name"] for line in of("sysctl_changes")}
    assert "kernel.ns_last_pid" not in names and "fs.file-nr" not in names  # counters are not settings
    with d.control() as client:
        client_runs = lambda: client.query(  # noqa: E731
            "SELECT executions FROM streamq_schedule WHERE name = 'sysctl_changes'"
        )[0]["executions"]
        start = client_runs()
        assert retry(lambda: client_runs() >= start + 2, timeout=8 * INTERVAL), client_runs()  # two intervals
    assert [line for line in of("sysctl_changes") if line["counter"] > 0] == []
    assert [line for line in of("kernel_modules") if line["counter"] > 0] == []
    seen = [(c["port"], c["protocol"], c["path"]) for c in (line["columns"] for line in of("new_listening_ports"))]
    assert len(seen) == len(set(seen)), "a listener already seen fired again"
    if not is_root:
        pytest.skip("changing a sysctl needs root")
    before = read_setting()
    changed = str(int(before) + 1)
    try:
        subprocess.run(["sysctl", "-q", "-w", f"{SETTING}={changed}"], check=True)
        assert retry(lambda: [line for line in of("sysctl_changes") if line["counter"] > 0], timeout=6 * INTERVAL)
        with d.control() as client:
            start = client.query("SELECT executions FROM streamq_schedule WHERE name = 'sysctl_changes'")[0]
            assert retry(
                lambda: (
                    client.query("SELECT executions FROM streamq_schedule WHERE name = 'sysctl_changes'")[0][
                        "executions"
                    ]
                    >= start["executions"] + 1
                ),
                timeout=4 * INTERVAL,
            )
    finally:
        subprocess.run(["sysctl", "-q", "-w", f"{SETTING}={before}"], check=True)
    changes = [line for line in of("sysctl_changes") if line["counter"] > 0]
    assert [(line["action"], line["columns"]) for line in changes[:1]] == [
        ("added", {"name": SETTING, "current_value": changed})
    ]
    assert len([line for line in changes if line["columns"]["current_value"] == changed]) == 1
    d.stop()


def test_it_starts_the_sources_it_names_and_not_audit(tmp_path, daemon):
    """Every source whose section the default names runs, read by a query or not (network_events is
    read by none); audit and hardware, which it does not name and no query reads, do not run."""
    d = daemon(config(tmp_path)).start()
    with d.control() as client:
        active = lambda: {row["source"] for row in client.query("SELECT source FROM streamq_events WHERE active = 1")}  # noqa: E731
        assert retry(lambda: active() == {"process", "file", "socket", "network"}, timeout=15), active()
        names = {row["name"] for row in client.query("SELECT name FROM streamq_events")}
    assert not names & {"user_events", "process_file_events", "hardware_events"}, names
    d.stop()
