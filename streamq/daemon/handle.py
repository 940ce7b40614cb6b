"""The daemon as its own parts (control socket, fleet responder) see it: a typed, declared handle."""

from __future__ import annotations

from typing import Protocol

from ..config.sections import Config
from ..ring import Rings
from ..sinks.delivery import Delivery
from ..sql.session import DaemonHandle
from ..sql.thread import SqlThread


class DaemonServices(DaemonHandle, Protocol):
    """What streamq.daemon.app.Daemon offers the servers it starts: its config, its rings,
    the SQL thread every query runs on and a way to apply fleet fragments, besides what
    the streamq_* tables see."""

    config: Config  # what runs: the config file merged with the fleet's fragments
    local_config: Config  # the config file alone
    rings: Rings
    sql: SqlThread
    deliveries: dict[str, Delivery]  # sink name -> what moves its outbox rows to it

    async def apply_fragments(self, fragments: dict[str, Config]) -> None:
        """Run the config file with these fleet fragments (name -> fragment) merged in, as SIGHUP would."""
        ...
