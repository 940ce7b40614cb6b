"""Import a helper module on first use, not when a table module is imported.

Every table module is imported to build the registry, even for
`streamq query "select * from time"`; their parsers (iptables, rpm, SMBIOS...)
should cost nothing until a query reads their table.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__dict__["_lazy_name"])
        self.__dict__.update(module.__dict__)  # later lookups are plain attribute reads
        return getattr(module, attr)


def lazy_module(name: str) -> Any:
    return LazyModule(name)
