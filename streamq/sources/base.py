"""What every source shares: its status, the supervisor that restarts it, and errors."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any, ClassVar

from ..config.options import SourceOptions, coerce
from ..errors import StreamqError
from ..ring import EventRing, Rings, SourceStatus

log = logging.getLogger("streamq.sources")


class SourceUnavailable(StreamqError):
    """The source cannot run here (no rights, no kernel support); it says why."""


class Source:
    """Base class: subclasses set ``name`` (their config key), ``kind``, ``Options`` and implement :meth:`run`.

    ``run`` appends to ``self.ring`` until cancelled. It raises
    SourceUnavailable when it cannot run at all (the supervisor stops trying)
    and any other exception for a failure worth retrying with backoff.
    """

    name: ClassVar[str] = "source"
    kind: ClassVar[str] = "poll"
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, table: str, options: SourceOptions | Mapping[str, Any] | None, rings: Rings) -> None:
        self.table = table
        self.options = coerce(self.Options, options)
        self.rings = rings
        self.ring: EventRing = rings.ring(table)
        self.status: SourceStatus = rings.status.setdefault(table, SourceStatus(self.name, self.kind))

    @classmethod
    def warnings(cls, options: SourceOptions) -> list[str]:
        """What this source would warn about at start (`run --check` shows them too)."""
        return []

    async def run(self) -> None:
        raise NotImplementedError


async def supervise(source: Source, *, first_delay: float = 0.5, max_delay: float = 30.0) -> None:
    """Run ``source`` until cancelled, restarting it with jittered exponential backoff."""
    delay = first_delay
    status = source.status
    while True:
        status.active = True
        try:
            await source.run()
            return  # a finite source (stdin, a file read once) ended on its own
        except asyncio.CancelledError:
            raise
        except SourceUnavailable as err:
            status.error(str(err))
            log.info("%s: %s", source.name, err)  # the caller reports it (streamq_events, --follow)
            return
        except Exception as err:  # a source failure must not take the others down
            status.error(f"{type(err).__name__}: {err}")
            log.warning("%s failed (%s); restarting in %.1fs", source.name, err, delay)
        finally:
            status.active = False
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, max_delay)
