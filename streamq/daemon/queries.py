"""A continuous query as the scheduler runs it, built from a config's [queries.*] and packs."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config.queries import stream_options
from ..config.sections import Config
from ..stream.spec import StreamSpec

DEFAULT_INTERVAL = 60.0  # a query with no trigger at all still runs, once a minute


@dataclass(frozen=True)
class QuerySpec:
    name: str
    sql: str
    interval: float | None = None
    on: tuple[str, ...] = ()
    debounce: float = 0.02
    mode: str = "diff"  # diff | snapshot | stream
    sinks: tuple[str, ...] = ()
    removed: bool = True
    format: str = "event"  # event | batch (a snapshot run always writes the snapshot form)
    numerics: bool = True
    deadline: float = 60.0
    pack: str | None = None
    description: str | None = None
    stream: StreamSpec = field(default_factory=StreamSpec)  # window, emit, grace, dedup, limit


def query_specs(config: Config) -> dict[str, QuerySpec]:
    """Every query of ``config``, with the schedule's defaults filled in."""
    specs = {}
    for name, q in config.queries.items():
        interval = q.interval
        on = tuple(q.on)
        if interval is None and not on and q.mode != "stream":
            interval = DEFAULT_INTERVAL
        specs[name] = QuerySpec(
            name=name,
            sql=q.sql,
            interval=interval,
            on=on,
            debounce=q.debounce,
            mode=q.mode,
            sinks=tuple(q.sinks or ()),
            removed=q.removed,
            format=q.format,
            numerics=q.numerics,
            deadline=q.deadline or config.schedule.deadline,
            description=q.description,
            stream=stream_options(q),
        )
    return specs
