"""The daemon as its own parts (control socket, fleet responder) see it: a typed, declared handle."""

from __future__ import annotations

from typing import Protocol

from ..config.sections import Config
from ..ring import Rings
from ..sql.session import DaemonHandle
from ..sql.thread import SqlThread


class DaemonServices(DaemonHandle, Protocol):
    """What streamq.daemon.app.Daemon offers the servers it starts: its config, its rings and
    the SQL thread every query runs on, besides what the streamq_* tables see."""

    config: Config
    rings: Rings
    sql: SqlThread
