"""What a table module may import, and what loading every table costs at start.

A table module is a spec plus a generator: it imports the engine (sql/), host
readers (host/), tables/_common and errors/text, never another family's module
(event tables also build on tables/events).
`streamq query "select * from time"` imports every table module, so the host
readers they use are imported on first use (tables._common.lazy_module).
"""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import ROOT

TABLES = ROOT / "streamq" / "tables"
ALLOWED = (
    *("streamq.sql", "streamq.host", "streamq.tables._common", "streamq.tables.events"),
    *("streamq.errors", "streamq.text", "streamq._version"),
)
# procfs: imported by every query anyway (the processes table's hot path reads /proc through it).
EAGER_HOST = {"streamq.host", "streamq.host.procfs"}


def _imports(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ["streamq", "tables"][: 3 - node.level]
            origin = ".".join(base + ([node.module] if node.module else []))
            found += [origin if node.module else f"{origin}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streamq"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("streamq")]
    return found


def test_table_modules_import_only_the_engine_host_readers_and_common():
    wrong = [
        f"{path.name}: {name}"
        for path in sorted(TABLES.glob("*.py"))
        if path.name != "__init__.py"
        for name in _imports(path)
        if not name.startswith(ALLOWED)
    ]
    assert not wrong, wrong


def _declares_tables(path) -> bool:
    calls = {"table", "make_event_table"}
    return any(
        isinstance(node, ast.Call) and getattr(node.func, "id", None) in calls
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
    )


def test_every_table_module_is_loaded_as_a_builtin():
    from streamq.tables import BUILTIN_MODULES

    declaring = {f"streamq.tables.{p.stem}" for p in TABLES.glob("*.py") if _declares_tables(p)}
    assert set(BUILTIN_MODULES) == declaring


def test_loading_every_table_imports_no_host_reader_but_procfs():
    code = (
        "import sys, streamq.tables as t; t.load_builtin(); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('streamq.host'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert set(out.stdout.split()) == EAGER_HOST
