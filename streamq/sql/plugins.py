"""Find table modules registered under the ``streamq.tables`` entry-point group.

``importlib.metadata.entry_points()`` costs ~80 ms here (it imports email
parsing and reads every distribution), which is a third of the cold-start
budget of ``streamq query``. Entry points are plain INI files, so we read the
``entry_points.txt`` of each installed distribution directly.
"""

from __future__ import annotations

import importlib
import os
import sys

GROUP = "streamq.tables"
# The built-in tables come in through the same door as a plugin's (Datasette's DEFAULT_PLUGINS):
# the engine names no table module, and an uninstalled checkout still has its tables.
BUILTIN = "streamq.tables:load_builtin"
# Then the event tables a source declares in its own module (streamq.sources.SOURCES).
SOURCE_TABLES = "streamq.sources:declare_tables"


def entry_point_modules(group: str = GROUP) -> list[str]:
    """Targets (``module`` or ``module:function``) listed under ``group`` on sys.path."""
    found: list[str] = []
    for entry in sys.path:
        try:
            children = os.scandir(entry or ".")
        except OSError:
            continue
        with children:
            for child in children:
                if child.name.endswith((".dist-info", ".egg-info")):
                    found.extend(_read_group(os.path.join(child.path, "entry_points.txt"), group))
    return list(dict.fromkeys(found))


def _read_group(path: str, group: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    modules, inside = [], False
    for line in lines:
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            target = line.split("=", 1)[1].strip()
            modules.append(target.split("[", 1)[0].strip())
    return modules


def load_plugins(group: str = GROUP) -> list[tuple[str, Exception]]:
    """Import every registered table module (calling ``module:function`` targets); return failures."""
    from .schema import REGISTRY

    failures = []
    for name in entry_point_modules(group):
        if name == BUILTIN:
            continue  # loaded first, on its own (streamq.sql.connection.load_tables)
        before = set(REGISTRY)
        try:
            load_target(name)
        except Exception as err:  # a broken plugin must not take the built-in tables down
            for added in set(REGISTRY) - before:
                del REGISTRY[added]  # skipped whole: not the tables it declared before failing
            failures.append((name, err))
    return failures


def load_target(target: str) -> None:
    """Import ``module``, or import ``module`` and call ``function`` for ``module:function``."""
    module_name, _, function = target.partition(":")
    module = importlib.import_module(module_name.strip())
    if function:
        getattr(module, function.strip())()
