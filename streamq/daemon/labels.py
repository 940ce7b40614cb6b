"""Labels: named read-only queries, evaluated on the host on their own intervals.

A host is a member of label ``web`` while ``[labels.web] sql`` returns at least one row.
Fleet fragments pushed with ``--label web`` apply only on members
(streamq.daemon.fleet_config), so membership is decided here, in seconds, with no
server. A label whose query fails counts as not matching, and its error is shown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..config.sections import LabelOptions
from ..errors import StreamqError

log = logging.getLogger("streamq.daemon.labels")


@dataclass
class Label:
    name: str
    options: LabelOptions
    defined_by: str  # "config" (this host's file) or the fragment that defines it
    member: bool | None = None  # None until first evaluated
    error: str | None = None
    evaluated: int | None = None  # unix seconds of the last evaluation
    task: asyncio.Task | None = None


class Labels:
    """The labels this host knows, each evaluated every ``interval``; ``on_change`` hears of any change."""

    def __init__(self, matches: Callable[[str], Awaitable[bool]], on_change: Callable[[], None]) -> None:
        self._matches = matches  # runs a label's SQL (on the read-only connection): any row?
        self._on_change = on_change
        self.labels: dict[str, Label] = {}

    def member(self, name: str) -> bool | None:
        """True or False once evaluated; None for a label not evaluated yet or not defined."""
        label = self.labels.get(name)
        return label.member if label is not None else None

    @property
    def matched(self) -> list[str]:
        return sorted(name for name, label in self.labels.items() if label.member)

    def define(self, wanted: dict[str, tuple[LabelOptions, str]]) -> None:
        """Evaluate exactly the labels of ``wanted`` (name -> options, who defines it) from now on.

        A label whose options did not change keeps its membership and its timer.
        """
        for name in list(self.labels):
            label = self.labels[name]
            if name not in wanted or wanted[name][0] != label.options:
                if label.task is not None:
                    label.task.cancel()
                del self.labels[name]
        for name, (options, owner) in wanted.items():
            if name in self.labels:
                self.labels[name].defined_by = owner
                continue
            label = self.labels[name] = Label(name, options, owner)
            label.task = asyncio.create_task(self._every(label), name=f"label:{name}")

    async def evaluate(self) -> None:
        """Evaluate now every label not evaluated yet (at start, before fragments are applied)."""
        for label in list(self.labels.values()):
            if label.member is None:
                await self._evaluate(label)

    async def stop(self) -> None:
        tasks = [label.task for label in self.labels.values() if label.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _every(self, label: Label) -> None:
        while True:
            await self._evaluate(label)
            await asyncio.sleep(label.options.interval)

    async def _evaluate(self, label: Label) -> None:
        try:
            member, error = await self._matches(label.options.sql), None
        except StreamqError as err:
            member, error = False, " ".join(str(err).split())
        if error and error != label.error:
            log.warning("label %s: %s (counts as not matching)", label.name, error)
        changed = member != label.member
        label.member, label.error, label.evaluated = member, error, int(time.time())
        if changed:
            log.info("label %s: this host %s", label.name, "matches" if member else "does not match")
            self._on_change()
