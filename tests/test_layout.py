"""The house plan: imports run one way (cli -> daemon -> config/sources/sinks/tables -> sql/host/ring)
and no module imports another in a cycle, counting imports made inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "streamq"
# A lower number is a lower layer; a module may import its own layer (without cycles) or lower ones.
LAYERS = {
    "_version": 0,
    "errors": 0,
    "text": 0,
    "ring": 1,
    "host": 1,
    "mqtt": 1,
    "sql": 2,
    "config": 3,
    "sources": 3,
    "sinks": 3,
    "tables": 3,
    "stream": 3,
    "client": 3,
    "daemon": 4,
    "web": 4,
    "cli": 5,
}
# Whose job is to re-export or dispatch: the public API and `python -m streamq`.
TOP = {"streamq", "streamq.__main__"}
# host/ reads the machine and nothing of ours but these.
HOST_MAY_IMPORT = {"streamq.errors", "streamq.text"}
MAX_LINES = 400
# Pure declarations (column lists) may be longer; none is today.
LONG_ALLOWED: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every streamq module ``name`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # "from . import x" imports the module x when there is one, else a name of the package.
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_layer():
    missing = [m for m in modules() if m not in TOP and layer_of(m) is None]
    assert not missing, f"add these to LAYERS (and to docs/architecture.md): {missing}"


def test_imports_run_one_way():
    wrong = []
    for name, targets in graph().items():
        if name in TOP:
            continue
        for target in targets:
            if target in TOP or layer_of(target) > layer_of(name):
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_host_readers_import_nothing_of_ours_but_errors_and_text():
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if name.startswith("streamq.host")
        for target in targets
        if not target.startswith("streamq.host") and target not in HOST_MAY_IMPORT
    ]
    assert not wrong, wrong


def test_no_import_cycles():
    edges = graph()
    # Importing a module runs its package's __init__ first: count that as an edge too.
    for name in list(edges):
        parent = name.rpartition(".")[0]
        if parent in edges and parent != "streamq":
            edges[name] = edges[name] | {parent}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target == "streamq" or target not in edges:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_modules_stay_small():
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES and name not in LONG_ALLOWED
    }
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


def test_the_daemon_is_reached_through_its_declared_handle():
    """Tables and servers see the daemon as streamq.sql.session.DaemonHandle /
    streamq.daemon.handle.DaemonServices: no parameter named daemon goes untyped or
    typed Any, and no code fishes an undeclared attribute off it with getattr."""
    wrong = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.arg == "daemon" and (arg.annotation is None or ast.unparse(arg.annotation) == "Any"):
                        wrong.append(
                            f"{name}:{node.lineno} {node.name}(daemon: {ast.unparse(arg.annotation or ast.Name('?'))})"
                        )
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
                text = ast.unparse(node)
                if "daemon" in text:
                    wrong.append(f"{name}:{node.lineno} {text}")
    assert not wrong, "\n".join(wrong)


def test_the_readme_layout_has_a_line_per_package():
    text = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    missing = [name for name in packages if f"\n  {name}/ " not in text]
    assert not missing, f"README.md's Layout tree lacks {missing}"
