"""What several table families share: lazy host modules, the paths a query names, the
docker_* tables' engine wrapper, and osquery's ``pid_with_namespace``.

Every table module is imported to build the registry, even for
`streamq query "select * from time"`; their parsers (iptables, rpm, SMBIOS...)
should cost nothing until a query reads their table, hence :func:`lazy_module`.

``pid_with_namespace`` has osquery's one meaning in every table that has it:
0 (what an unconstrained query reads, and what its rows show) is the host's own
view; N > 0 reads the same files as process N sees them, through
``/proc/N/root``, and the rows show N. A process that is gone or hidden from us
gives no rows. A table declares the column(s) below and loops over
:func:`namespaces`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from ..host import procfs
from ..sql.schema import INTEGER, TEXT, Column, QueryContext
from ..sql.session import DaemonHandle


class LazyModule:
    def __init__(self, name: str) -> None:
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__dict__["_lazy_name"])
        self.__dict__.update(module.__dict__)  # later lookups are plain attribute reads
        return getattr(module, attr)


def lazy_module(name: str) -> Any:
    return LazyModule(name)


globbing = lazy_module("streamq.host.globbing")
dockerapi = lazy_module("streamq.host.dockerapi")


def daemon_of(ctx: QueryContext) -> DaemonHandle | None:
    """The daemon whose connection runs the query (the streamq_* tables read it); None elsewhere."""
    session = ctx.session
    return session.daemon if session is not None else None


def requested_paths(ctx, column: str = "path") -> Iterator[str]:
    """Each `column = value` and each match of `column LIKE pattern`, once."""
    seen: set[str] = set()
    for path in [p for p in ctx.eq(column) or () if isinstance(p, str)]:
        if path and path not in seen:
            seen.add(path)
            yield path
    for pattern in ctx.like(column):
        for path in globbing.expand(pattern):
            if path not in seen:
                seen.add(path)
                yield path


def engine_rows(body: Callable[[Any, QueryContext], Iterable[dict]]) -> Callable[[QueryContext], Iterator[dict]]:
    """A docker_* table generator from ``body(engine, ctx)`` (host/dockerapi's Engine): no engine
    means no rows and one warning, so a host without Docker still answers the query."""

    @functools.wraps(body)
    def gen(ctx: QueryContext) -> Iterator[dict]:
        try:
            yield from body(dockerapi.engine(), ctx)
        except dockerapi.DockerUnavailable as err:
            dockerapi.note(err)

    return gen


PID_WITH_NAMESPACE = Column(
    "pid_with_namespace",
    INTEGER,
    "Read the files as this process sees them (through /proc/<pid>/root); 0, the default, is the host's own view.",
    hidden=True,
    additional=True,
)
MOUNT_NAMESPACE_ID = Column(
    "mount_namespace_id",
    TEXT,
    "Inode of the mount namespace the row was read in; NULL for the host's own view.",
    hidden=True,
)
NAMESPACE_COLUMNS = (PID_WITH_NAMESPACE, MOUNT_NAMESPACE_ID)


class Namespace(NamedTuple):
    """One view of the file system that a query reads."""

    pid: int  # the pid_with_namespace value its rows show: 0 for the host
    root: str  # prefix of every path read in it: "" for the host, else /proc/<pid>/root
    mount_namespace_id: str | None  # None for the host


HOST = Namespace(0, "", None)


def namespaces(ctx: QueryContext) -> list[Namespace]:
    """The views the query asks for with ``pid_with_namespace = N`` / ``IN (...)``, else the host's."""
    values = ctx.eq("pid_with_namespace")
    if values is None:
        return [HOST]
    found = []
    for value in values:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            continue  # no process has that pid: no rows
        if value == 0:
            found.append(HOST)
            continue
        mnt = procfs.namespace_inode(value, "mnt")
        if mnt is not None:  # the process is gone, or not ours to look into
            found.append(Namespace(value, f"/proc/{value}/root", mnt))
    return found
