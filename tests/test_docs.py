"""docs/writing-tables.md: its Python runs as written, and its pyproject snippet matches the example package."""

from __future__ import annotations

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
