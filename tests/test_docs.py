"""docs/writing-tables.md: its Python runs as written, and its pyproject snippet matches the example package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT

DOC = ROOT / "docs" / "writing-tables.md"
EXAMPLE = ROOT / "examples" / "streamq-pressure" / "pyproject.toml"

# Run the blocks in order in one namespace, then every test_* function they define
# with a fresh connection, the way pytest would with the `conn` fixture.
RUNNER = """
import sys, streamq
namespace = {"__name__": "writing_tables"}
for block in sys.argv[1:]:
    exec(compile(block, "docs/writing-tables.md", "exec"), namespace)
tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
assert tests, "the doc defines no test"
with streamq.connect() as conn:
    for test in tests:
        test(conn)
print("ran", len(tests), "test(s)")
"""


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)


def test_python_examples_run():
    if shutil.which("ip") is None:
        pytest.skip("the doc's test uses ip(8) as its witness")
    code = blocks("python")
    assert len(code) >= 4
    # A subprocess: the doc registers `net_counters`, which must not leak into this session's registry.
    result = subprocess.run([sys.executable, "-c", RUNNER, *code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ran 1 test(s)" in result.stdout
    assert "verdict      ok" in result.stdout  # the leak check block printed its report


def test_pyproject_snippet_is_the_example_packages():
    (snippet,) = blocks("toml")
    doc, real = tomllib.loads(snippet), tomllib.loads(EXAMPLE.read_text())
    assert doc["project"]["entry-points"] == real["project"]["entry-points"]
    assert doc["project"]["entry-points"]["streamq.tables"] == {"pressure": "streamq_pressure"}
    assert doc["build-system"] == real["build-system"]
    assert doc["tool"] == real["tool"]


def test_documented_bounds_are_the_code_bounds():
    from streamq.cli import leakcheck

    text = DOC.read_text()
    assert f"| tracemalloc | {leakcheck.TRACEMALLOC_BOUND // 1024} KiB per run |" in text
    assert f"| RSS | {leakcheck.RSS_BOUND // 1024} KiB per run |" in text
    assert f"--repeat {leakcheck.min_runs()}` or more" in text


# -- every Python block of README.md and docs/*.md runs -------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEFAULT_SOCKET = "/run/streamq/control.sock"


def python_blocks(path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", path.read_text(), flags=re.M | re.S)


def test_the_readme_has_python_blocks():
    assert len(python_blocks(ROOT / "README.md")) >= 2


@pytest.fixture(scope="module")
def control_socket():
    """A real daemon whose control socket the docs' client examples talk to."""
    import tempfile
    from pathlib import Path

    from daemon_process import terminate

    from conftest import retry

    root = tempfile.mkdtemp(prefix="sqdoc")  # short: a socket path must fit in 108 bytes
    config = f'[state]\npath = "{root}/state.db"\n[control]\npath = "{root}/control.sock"\n'
    with open(f"{root}/streamq.toml", "w") as f:
        f.write(config)
    with open(f"{root}/stderr.txt", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamq", "run", "-c", f"{root}/streamq.toml"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        assert retry(lambda: os.path.exists(f"{root}/control.sock") or proc.poll() is not None, timeout=20)
        assert proc.poll() is None, Path(root, "stderr.txt").read_text()
        yield f"{root}/control.sock"
    finally:
        terminate(proc)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("doc", [d for d in DOCS if python_blocks(d)], ids=lambda d: d.name)
def test_every_python_block_runs(doc, control_socket):
    # One namespace per document, blocks in order, as a reader would paste them; the control
    # socket examples talk to a real daemon whose socket stands in for the default path.
    code = [block.replace(DEFAULT_SOCKET, control_socket) for block in python_blocks(doc)]
    runner = (
        "import sys\n"
        "namespace = {'__name__': 'doc'}\n"
        "for block in sys.argv[2:]:\n"
        "    exec(compile(block, sys.argv[1], 'exec'), namespace)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, str(doc), *code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_the_readme_table_count_is_the_registry_count():
    from streamq.sql.connection import load_tables

    (count,) = re.findall(r"\.\.\. (\d+) tables\)", (ROOT / "README.md").read_text())
    assert int(count) == len(load_tables())


# -- docs/architecture.md's worked source: one module plus one SOURCES entry ------------------------

SOURCE_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
from streamq.sources import SOURCES, SourceEntry
SOURCES["loadavg"] = SourceEntry("loadavg_example:LoadavgSource", ("load_events",))
import streamq
from streamq.config.loader import load
from streamq.daemon.check import check
with streamq.connect() as conn:
    assert conn.query("SELECT count(*) AS n FROM load_events") == [{"n": 0}]
report = check(load(sys.argv[2]))  # a config that names the query, not the source
assert report.ok, report.errors
print("ok")
"""


def test_the_architecture_source_needs_only_its_module_and_its_entry(tmp_path):
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("### A source", 1)[1].split("### A sink", 1)[0]
    module = re.findall(r"^```python\n(.*?)^```$", section, flags=re.M | re.S)[0]
    (tmp_path / "loadavg_example.py").write_text(module)
    config = tmp_path / "streamq.toml"
    config.write_text(
        f'[state]\npath = "{tmp_path}/state.db"\n[sinks.out]\ntype = "stdout"\n'
        '[queries.load]\nsql = "SELECT load1 FROM load_events"\non = ["load_events"]\nsinks = ["out"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", SOURCE_CHECK, str(tmp_path), str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
