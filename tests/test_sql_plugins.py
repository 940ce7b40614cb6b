"""examples/streamq-pressure: pip-installed as a separate package, its table answers through `streamq query`.

The package is installed with ``pip install --target`` into a temporary directory
that only the child processes see (PYTHONPATH), so the venv is never changed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, retry

EXAMPLE = ROOT / "examples" / "streamq-pressure"
PRESSURE = Path("/proc/pressure")
OFFLINE_HINTS = ("NewConnectionError", "No matching distribution", "Could not find a version", "Temporary failure")


def _can_build_offline() -> bool:
    # setuptools builds wheels itself from 70.1; before that it needs the `wheel` package.
    return importlib.util.find_spec("setuptools") is not None and (
        importlib.util.find_spec("wheel") is not None
        or importlib.util.find_spec("setuptools.command.bdist_wheel") is not None
    )


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("plugin")
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = shutil.copytree(EXAMPLE, base / "src")
    target = base / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-input", "--target", str(target)]
    if _can_build_offline():
        command.append("--no-build-isolation")  # use this venv's setuptools: no network
    result = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and not _can_build_offline() and any(h in result.stderr for h in OFFLINE_HINTS):
        pytest.skip("building the example needs setuptools from the network (or `wheel` in the venv)")
    assert result.returncode == 0, result.stderr
    yield target
    shutil.rmtree(base, ignore_errors=True)


def _run(path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.run(
        [sys.executable, "-m", "streamq", *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )


def _truth() -> dict[tuple[str, str], dict]:
    """/proc/pressure read by hand: {(resource, kind): {avg10, avg60, avg300, total}}."""
    rows = {}
    for path in sorted(PRESSURE.iterdir()):
        try:
            text = path.read_text()
        except OSError:
            continue  # psi=0 or irq accounting off: the table has no rows for it either
        for line in text.splitlines():
            kind, *fields = line.split()
            values = dict(f.split("=") for f in fields)
            rows[(path.name, kind)] = {k: (int(v) if k == "total" else float(v)) for k, v in values.items()}
    return rows


def test_installed_into_the_target_only(plugin_path):
    infos = list(plugin_path.glob("streamq_pressure-*.dist-info"))
    assert len(infos) == 1
    assert "[streamq.tables]" in (infos[0] / "entry_points.txt").read_text()
    assert (plugin_path / "streamq_pressure.py").exists()
    # Not visible to this interpreter: the venv was not touched.
    assert importlib.util.find_spec("streamq_pressure") is None


def test_the_plugin_table_is_listed_with_its_schema(plugin_path):
    result = _run(plugin_path, "tables", "pressure")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pressure"]
    result = _run(plugin_path, "schema", "pressure")
    assert result.returncode == 0, result.stderr
    for column in ("resource", "kind", "avg10", "avg60", "avg300", "total"):
        assert column in result.stdout
    # Without the plugin on the path the table does not exist.
    assert _run(ROOT / "no-such-dir", "query", "SELECT * FROM pressure").returncode == 1


@pytest.mark.skipif(not PRESSURE.is_dir(), reason="this kernel has no pressure stall information")
def test_rows_match_proc_pressure(plugin_path):
    # The averages move every 2 s and the totals only grow: a query's values must lie
    # between a reading taken before it and one taken after. A slow host may straddle
    # two updates, so the bracket is retried.
    def check():
        before = _truth()
        result = _run(plugin_path, "query", "--json", "SELECT * FROM pressure")
        after = _truth()
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        assert {(r["resource"], r["kind"]) for r in rows} == set(before) == set(after)
        for row in rows:
            low, high = before[(row["resource"], row["kind"])], after[(row["resource"], row["kind"])]
            assert isinstance(row["total"], int)
            if not low["total"] <= row["total"] <= high["total"]:
                return False
            for key in ("avg10", "avg60", "avg300"):
                if not min(low[key], high[key]) <= row[key] <= max(low[key], high[key]):
                    return False
        return True

    assert retry(check, timeout=20, interval=0.5)


@pytest.mark.skipif(not PRESSURE.is_dir(), reason="this kernel has no pressure stall information")
def test_resource_is_pushed_down_and_filters(plugin_path):
    result = _run(
        plugin_path, "query", "--json", "SELECT resource, kind FROM pressure WHERE resource IN ('io', 'nope')"
    )
    assert result.returncode == 0, result.stderr
    expected = sorted(("io", kind) for resource, kind in _truth() if resource == "io")
    assert sorted((r["resource"], r["kind"]) for r in json.loads(result.stdout)) == expected
    assert expected


def test_the_plugin_table_passes_the_leak_check(plugin_path):
    result = _run(plugin_path, "query", "--json", "--repeat", "30", "--leak-check", "SELECT * FROM pressure")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["leak_check"]["leaking"] is False
    assert report["rows_per_run"] == len(_truth())


def test_a_plugin_that_fails_part_way_is_skipped_whole(tmp_path):
    """docs/writing-tables.md: a plugin that raises (here: a table name already taken) is
    skipped, so the table it declared before failing is not there either."""
    (tmp_path / "streamq_clash.py").write_text(
        "import streamq\n"
        "from streamq import TEXT, Column\n\n\n"
        "def register():\n"
        "    for name in ('clash_first', 'processes'):\n"
        "        streamq.table(name, 'A table.', [Column('x', TEXT, 'X.')])(lambda ctx: iter(()))\n"
    )
    info = tmp_path / "streamq_clash-0.1.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[streamq.tables]\nclash = streamq_clash:register\n")
    result = _run(tmp_path, "tables")
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert "processes" in names and "clash_first" not in names
    assert "plugin streamq_clash:register not loaded: ValueError: table processes is registered twice" in result.stderr
