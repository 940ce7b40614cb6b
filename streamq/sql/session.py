"""What a connection's tables can see at run time besides the host: rings, windows, the daemon."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..ring import Rings


class DaemonHandle(Protocol):
    """The running daemon as the streamq_* tables and remote SQL see it (streamq.daemon.app.Daemon).

    ``queries`` maps a query name to its runtime (spec, stats, denylisted); ``sinks`` a
    sink name to the sink (type, stats); ``fleet`` is the fleet responder and ``control``
    the control socket's server, or None; ``fleet_config`` is None unless the daemon
    accepts fleet config fragments, else it has ``fragments`` (name ->
    streamq.daemon.fleet_store.FragmentState) and ``labels.labels`` (name ->
    streamq.daemon.labels.Label).
    """

    host: str
    instance_id: str | None
    config_hash: str
    started: int
    config: Any  # streamq.config.sections.Config: what runs (a layer above this one)

    @property
    def queries(self) -> Mapping[str, Any]: ...

    @property
    def sinks(self) -> Mapping[str, Any]: ...

    @property
    def fleet(self) -> Any | None: ...

    @property
    def control(self) -> Any | None: ...

    @property
    def fleet_config(self) -> Any | None: ...


class Session:
    """Runtime state a connection's tables can see: event rings, stream windows and the daemon.

    ``floors[table]`` / ``ceilings[table]`` limit an event table to eids in
    (floor, ceiling], which is how a continuous reader sees each event exactly
    once even while new events arrive during its query (see streamq.ring.StreamWindow).
    ``daemon`` is set on the daemon's own connections; None elsewhere.
    """

    def __init__(self, rings: Rings | None = None, daemon: DaemonHandle | None = None) -> None:
        self.rings = rings if rings is not None else Rings()
        self.floors: dict[str, int] = {}
        self.ceilings: dict[str, int] = {}
        self.rows: dict[str, list] = {}  # table -> the ring entries it reads instead of its ring
        self.daemon = daemon


class EventWindow:
    """The slice of each event table one run of a continuous reader sees: eids in (floor, ceiling].

    The ceiling is each ring's newest eid when the run starts (or ``limit`` eids past
    the floor: a run reads a bounded piece), and becomes the floor of the next run, so
    every event is read exactly once even while more arrive during a run. A window of
    ``rows`` instead makes each table read exactly the given ring entries: the rows of
    one time window (streamq.stream). The scheduler and ``--follow`` read through this.
    """

    def __init__(
        self, floors: Mapping[str, int], ceilings: Mapping[str, int], rows: Mapping[str, list] | None = None
    ) -> None:
        self.floors = dict(floors)
        self.ceilings = dict(ceilings)
        self.rows = dict(rows or {})

    @classmethod
    def after(cls, rings: Rings, floors: Mapping[str, int], *, limit: int | None = None) -> EventWindow:
        """The window from ``floors`` up to what the rings hold now (at most ``limit`` eids past each floor)."""
        ceilings = {}
        for table, floor in floors.items():
            last = rings.ring(table).last_eid
            top = last if limit is None else min(last, floor + limit)
            # A source replaying from its checkpoint may not have reached the floor yet: the
            # window is then empty, and its ceiling (the next floor) must not go back.
            ceilings[table] = max(floor, top)
        return cls(floors, ceilings)

    @classmethod
    def of_rows(cls, rows: Mapping[str, list]) -> EventWindow:
        """A window of given ring entries (one time window's rows): each table reads exactly those."""
        return cls({}, {}, rows)

    @property
    def empty(self) -> bool:
        return self.floors == self.ceilings

    def apply(self, session: Session) -> _Applied:
        """``with window.apply(session):`` the event tables read only this window."""
        return _Applied(self, session)


class _Applied:
    def __init__(self, window: EventWindow, session: Session) -> None:
        self.window, self.session = window, session

    def __enter__(self) -> EventWindow:
        session, window = self.session, self.window
        session.floors, session.ceilings, session.rows = dict(window.floors), dict(window.ceilings), dict(window.rows)
        return window

    def __exit__(self, *exc: object) -> None:
        self.session.floors, self.session.ceilings, self.session.rows = {}, {}, {}
