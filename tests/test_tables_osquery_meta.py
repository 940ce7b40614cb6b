"""osquery_flags, osquery_packs, osquery_registry and osquery_extensions, in the shell and in a running daemon."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from daemon_process import terminate

import streamq
from conftest import retry
from streamq.sql.connection import load_tables


@pytest.fixture(scope="module")
def daemon_socket():
    root = Path(tempfile.mkdtemp(prefix="sqmeta"))  # short: a socket path must fit in 108 bytes
    pack = root / "incident.conf"
    pack.write_text(
        json.dumps(
            {
                "platform": "linux",
                "version": "1.4.5",
                "shard": "30",
                "queries": {"uptime": {"query": "SELECT * FROM uptime", "interval": 3600}},
            }
        )
    )
    (root / "streamq.toml").write_text(
        f"""
[state]
path = "{root}/state.db"
[control]
path = "{root}/c.sock"
[rings]
capacity = 5000
[packs]
paths = ["{pack}"]
[sinks.out]
type = "file"
path = "{root}/results.jsonl"
"""
    )
    err = open(root / "stderr.txt", "w")  # noqa: SIM115 (closed in the finalizer)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamq", "run", "-c", str(root / "streamq.toml")],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    try:
        assert retry(lambda: "running" in (root / "stderr.txt").read_text() or proc.poll() is not None, timeout=20)
        assert proc.poll() is None, (root / "stderr.txt").read_text()
        yield str(root / "c.sock")
    finally:
        terminate(proc)
        err.close()
        shutil.rmtree(root, ignore_errors=True)


def test_flags_outside_a_daemon_are_the_defaults(conn):
    rows = {r["name"]: r for r in conn.query("SELECT * FROM osquery_flags")}
    assert rows["rings.capacity"] == {
        "name": "rings.capacity",
        "type": "int64",
        "description": "events held per event table",
        "default_value": "100000",
        "value": "100000",
        "shell_only": 0,
    }
    assert rows["sources.file.paths"]["type"] == "list"
    assert not any(name.startswith(("queries.", "sinks.")) for name in rows)


def test_daemon_flags_packs_and_registry(daemon_socket):
    with streamq.Client(daemon_socket, timeout=30) as client:
        conn = client.connect()
        (flag,) = conn.query("SELECT default_value, value FROM osquery_flags WHERE name = 'rings.capacity'")
        assert flag == {"default_value": "100000", "value": "5000"}
        packs = conn.query("SELECT * FROM osquery_packs")
        assert packs == [
            {
                "name": "incident",
                "platform": "linux",
                "version": "1.4.5",
                "shard": 30,
                "discovery_cache_hits": 0,
                "discovery_executions": 0,
                "active": 1,
            }
        ]
        sinks = conn.query("SELECT name, internal FROM osquery_registry WHERE registry = 'sink'")
        assert sinks == [{"name": "out", "internal": 1}]


def test_registry_lists_every_table(conn):
    tables = {r["name"] for r in conn.query("SELECT name FROM osquery_registry WHERE registry = 'table'")}
    assert tables == set(load_tables())
    assert conn.query("SELECT internal, owner_uuid FROM osquery_registry WHERE name = 'processes'") == [
        {"internal": 1, "owner_uuid": 0}
    ]


def test_extensions_start_with_core(conn):
    core = conn.query("SELECT * FROM osquery_extensions WHERE uuid = 0")
    assert [(r["name"], r["version"], r["type"]) for r in core] == [("core", streamq.__version__, "core")]


def test_prometheus_and_yara_sections_reach_the_tables(tmp_path):
    from streamq.config import loader
    from streamq.daemon.app import configure_tables
    from streamq.host import yarascan
    from streamq.tables import web

    config = loader.parse(
        '[prometheus_targets]\nurls = ["http://127.0.0.1:9/metrics"]\ntimeout = "3s"\n'
        f'[yara]\nsignatures = {{ base = ["{tmp_path}/a.yar"] }}\n'
    )
    try:
        configure_tables(config)
        assert (web.PROMETHEUS.urls, web.PROMETHEUS.timeout) == (("http://127.0.0.1:9/metrics",), 3.0)
        assert {"base": [f"{tmp_path}/a.yar"]} == yarascan.SIGNATURE_GROUPS
    finally:
        configure_tables(loader.parse(""))
    assert web.PROMETHEUS.urls == () and yarascan.SIGNATURE_GROUPS == {}
