"""Fleet config on the daemon: signed fragments from the broker, verified, checked, kept and applied.

With ``[fleet] accept_config = true`` the daemon's fleet connection (streamq.daemon.fleet)
also subscribes to ``streamq/fleet/config/+``, where ``streamq fleet push`` leaves one
retained, signed fragment per name (docs/fleet.md). For each message, in order:

1. the signature, the fields and the name (streamq.daemon.fleet_protocol.Verifier);
2. the version: older than one seen already is a replay, refused; the same version
   with other content is refused too;
3. the target: ``hosts`` must name this host when it names any; ``label`` must be a
   label this host matches (streamq.daemon.labels), evaluated here on its interval;
4. the content: the config loader with a fragment's sections, against this host's
   sources and sinks, then every piece of SQL prepared read-only (streamq.daemon.fleet_check).

A fragment that passes runs as its config file's queries do, applied the way SIGHUP
applies a config (unchanged queries keep their state); its queries are named
``<fragment>/<query>``. One that fails is refused whole, counted and reported, and
the version before it stays in force. The fragments in force are written to the state
directory (streamq.daemon.fleet_store) so a restart without the broker runs them.
Each change, and a heartbeat, goes out as the host's retained report on
``streamq/fleet/report/{host}``; ``streamq_fleet_config`` shows the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..config.fragments import parse_fragment
from ..config.sections import Config, FleetOptions
from ..errors import ConfigError, QueryError
from ..sql.readonly import Limits, ReadOnlyConnection
from .fleet_check import check_fragment
from .fleet_protocol import CONFIG_PREFIX, REPORT_PREFIX, FleetError, Verifier, dumps, load_payload, topic_safe
from .fleet_store import FragmentState, digest, load_states, save_store, store_path
from .handle import DaemonServices
from .labels import Labels

log = logging.getLogger("streamq.daemon.fleet_config")
MAX_NAMES = 256  # fragment names tracked; messages on more topics are refused and counted in total only
HEARTBEAT = 60.0  # seconds between reports when nothing changes: a report's ts is when the host was last seen


async def start_fleet_config(daemon: DaemonServices) -> FleetConfig | None:
    """The daemon's fleet config, its stored fragments applied; None unless [fleet] accept_config."""
    options = daemon.config.fleet
    if options is None or not options.enabled or not options.accept_config or not topic_safe(daemon.host):
        return None
    fleet_config = FleetConfig(daemon, options)
    await fleet_config.start()
    return fleet_config


@dataclass
class Outcome:
    state: str  # applied | skipped | pending | refused | withdrawn
    config: Config | None = None  # the fragment as it runs here, when applied
    reason: str | None = None


class FleetConfig:
    def __init__(self, daemon: DaemonServices, options: FleetOptions) -> None:
        self.daemon = daemon
        self.host = daemon.host
        self.verifier = Verifier(self.host, options.key_bytes)
        self.path = store_path(daemon.config.state.path)
        self.report_topic = REPORT_PREFIX + self.host
        self.fragments: dict[str, FragmentState] = {}
        self.labels = Labels(self._label_matches, self._changed)
        self.received = self.refused = 0
        self._deadline = daemon.config.control.deadline
        self._client: Any = None
        self._wake = asyncio.Event()
        self._dirty = True  # something may decide differently now: reconcile
        self._report_due = True
        self._ro: ReadOnlyConnection | None = None
        self._task: asyncio.Task | None = None
        self._in_force: tuple = ()
        self._parsed: dict[str, Config | str] = {}  # envelope digest -> the fragment alone, or why it is refused
        self._checked: dict[str, Config | str] = {}  # digest -> the fragment checked on this host, or why not
        self._checked_for: Config | None = None  # the config file the checks were made against
        self._stored: Any = None

    # -- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        import tomllib  # noqa: F401  (imported now, not while the first fragment waits for it)

        d = self.daemon
        self._ro = await d.sql(ReadOnlyConnection.open, rings=d.rings, daemon=d, limits=Limits(1, self._deadline))
        self._load()
        await self._reconcile(first=True)
        self._task = asyncio.create_task(self._run(), name="fleet-config")

    async def stop(self) -> None:
        """Report a last time (the ts is when this host was last seen), then stop evaluating."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._publish_report(stopping=True), 1.0)
        await self.labels.stop()
        if self._ro is not None:
            self._ro.interrupt()
            self._closing = asyncio.ensure_future(self.daemon.sql(self._ro.close))
            self._ro = None

    def reconsider(self) -> None:
        """The config file was reloaded: check every fragment again against it."""
        self._changed()

    # -- the broker's side (called by the fleet connection, streamq.daemon.fleet) ------------------

    def owns(self, topic: str) -> bool:
        return topic.startswith(CONFIG_PREFIX)

    async def connected(self, client: Any) -> None:
        self._client = client
        await client.subscribe(CONFIG_PREFIX + "+", qos=1)  # the retained fragments come at once
        self._report_due = True
        self._wake.set()

    def disconnected(self) -> None:
        self._client = None

    def receive(self, topic: str, payload: Any) -> None:
        """One message on a fragment topic: verified and taken here, decided in the background."""
        name = topic[len(CONFIG_PREFIX) :]
        self.received += 1
        st = self.fragments.get(name)
        if st is None and len(self.fragments) < MAX_NAMES:
            st = self.fragments[name] = FragmentState(name)
        if st is not None:
            st.received += 1
        try:
            body = self._verified(topic, payload)
            if st is None:
                raise FleetError(f"this host tracks {MAX_NAMES} fragment names at most")
            self._take(st, body)
        except FleetError as err:
            self._refuse(st, name, str(err))
        self._wake.set()

    def _verified(self, topic: str, payload: Any) -> dict:

        if not payload:
            raise FleetError("an empty message is not a signed withdrawal (streamq fleet push --delete NAME)")
        body = load_payload(payload, "a fragment")
        self.verifier.check_fragment(body, topic)
        return body

    def _take(self, st: FragmentState, body: dict) -> None:
        version, content = body["version"], digest(body)
        if version < st.floor:
            raise FleetError(f"version {version} is older than version {st.floor}, seen already (a replay?)")
        if version == st.floor and content != st.floor_digest:
            raise FleetError(f"version {version} was seen already with other content")
        if st.latest is not None and digest(st.latest) == content:
            return  # the retained message again, after a reconnect: nothing new
        st.latest, st.floor, st.floor_digest = body, version, content
        self._dirty = True

    def _refuse(self, st: FragmentState | None, name: str, message: str) -> None:
        message = " ".join(message.split())
        self.refused += 1
        log.warning("fleet config: fragment %r refused: %s", name, message)
        if st is not None:
            st.refused += 1
            st.last_error = message
            if st.latest is None:
                st.settle("refused", message)
        self._report_due = True

    # -- deciding and applying ------------------------------------------------------------------

    def _changed(self) -> None:
        self._dirty = True
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT):
                    await self._wake.wait()
            except TimeoutError:
                self._report_due = True
            self._wake.clear()
            try:
                if self._dirty:
                    await self._reconcile()
                await self._publish_report()
            except Exception as err:  # a bug must not end fleet config for the daemon's lifetime
                log.error("fleet config: %s: %s", type(err).__name__, err)

    async def _reconcile(self, first: bool = False) -> None:
        """Decide every fragment again; run the ones that apply; keep and report the result."""
        self._dirty = False
        local = self.daemon.local_config
        if local is not self._checked_for:
            self._checked, self._checked_for = {}, local
        conflicts = self._define_labels(local)
        if first:
            await self.labels.evaluate()  # a restart runs label-targeted fragments from the start, too
        in_force: dict[str, Config] = {}
        decided: list[tuple[FragmentState, Outcome, int | None]] = []
        for name, st in sorted(self.fragments.items()):
            if st.latest is None:
                continue
            newest, running, version = await self._outcome(st, local, conflicts.get(name))
            if running is not None:
                in_force[name] = running
            decided.append((st, newest, version))
        changed = await self._apply(in_force)  # first: a fragment shown applied (or dropped) here is so already
        for st, newest, version in decided:
            self._settle(st, newest, version, in_force.get(st.name))
        if changed:  # after settling: the versions now in force, not the ones before
            log.info("fleet config: running %s", ", ".join(self._running()) or "no fragments")
        self._forget_old_versions()
        self._save()
        self._report_due = True

    async def _outcome(
        self, st: FragmentState, local: Config, conflict: str | None
    ) -> tuple[Outcome, Config | None, int | None]:
        """The newest version's outcome, and what runs: that version, or while it is refused (or waits
        for its label's first evaluation), the one before."""
        newest = await self._decide(st.latest, local, conflict)
        running, outcome = st.latest, newest
        if newest.state in ("refused", "pending"):
            if st.good is None or st.good is st.latest:
                return newest, None, None
            running, outcome = st.good, await self._decide(st.good, local, None)
        else:
            st.good = st.latest
        if outcome.config is None:
            return newest, None, None
        return newest, outcome.config, running["version"]

    def _settle(self, st: FragmentState, newest: Outcome, version: int | None, running: Config | None) -> None:
        if newest.state == "refused" and st.reason != newest.reason:
            st.refused += 1
            self.refused += 1
            log.warning("fleet config: %s version %d refused: %s", st.name, st.version, newest.reason)
        st.settle(newest.state, newest.reason)
        st.applied, st.queries = version, len(running.queries) if running is not None else 0

    async def _decide(self, envelope: dict, local: Config, conflict: str | None) -> Outcome:
        if envelope["op"] == "delete":
            return Outcome("withdrawn")
        hosts = envelope.get("hosts")
        if hosts and self.host not in hosts:
            return Outcome("skipped", reason=f"for {', '.join(hosts)}, not this host")
        parsed = self._parse(envelope)
        if isinstance(parsed, str):
            return Outcome("refused", reason=parsed)
        if conflict:
            return Outcome("refused", reason=conflict)
        label = envelope.get("label")
        if label:
            known = self.labels.labels.get(label)
            if known is None:
                return Outcome("skipped", reason=f"label {label!r} is not defined on this host")
            if known.member is None:
                return Outcome("pending", reason=f"label {label!r} not evaluated yet")
            if not known.member:
                why = f" ({known.error})" if known.error else ""
                return Outcome("skipped", reason=f"label {label!r} does not match{why}")
        checked = await self._check(envelope, local)
        if isinstance(checked, str):
            return Outcome("refused", reason=checked)
        return Outcome("applied", config=checked)

    def _parse(self, envelope: dict) -> Config | str:
        key = digest(envelope)
        if key not in self._parsed:
            try:
                self._parsed[key] = parse_fragment(envelope["toml"], envelope["name"])
            except ConfigError as err:
                self._parsed[key] = " ".join(str(err).split())
        return self._parsed[key]

    async def _check(self, envelope: dict, local: Config) -> Config | str:
        key = digest(envelope)
        if key not in self._checked:
            try:
                config = parse_fragment(envelope["toml"], envelope["name"], base=local)
                self._checked[key] = await self.daemon.sql(check_fragment, self._ro, config, local)
            except ConfigError as err:
                self._checked[key] = " ".join(str(err).split())
        return self._checked[key]

    def _forget_old_versions(self) -> None:
        """Keep parsed and checked fragments only for the versions a fragment may still run."""
        keep = {digest(e) for st in self.fragments.values() for e in (st.latest, st.good) if e is not None}
        for cache in (self._parsed, self._checked):
            for key in cache.keys() - keep:
                del cache[key]

    def _define_labels(self, local: Config) -> dict[str, str]:
        """Evaluate the labels of the config file and of every fragment meant for this host.

        The config file's definition wins: a host's own file has the last word on what it
        is. A fragment that defines a label differently from a fragment before it (by name)
        is refused: which of the two is meant would be a guess.
        """
        wanted = {name: (options, "config") for name, options in local.labels.items()}
        conflicts: dict[str, str] = {}
        for name, st in sorted(self.fragments.items()):
            envelope = st.latest
            if envelope is None or envelope["op"] != "put" or self.host not in (envelope.get("hosts") or [self.host]):
                continue
            parsed = self._parse(envelope)
            for label, options in parsed.labels.items() if isinstance(parsed, Config) else ():
                have = wanted.setdefault(label, (options, f"fragment {name}"))
                if have[0] != options and have[1] != "config":
                    conflicts[name] = f"label {label!r} is defined differently by {have[1]}"
        self.labels.define(wanted)
        return conflicts

    async def _apply(self, in_force: dict[str, Config]) -> bool:
        key = tuple((name, id(config)) for name, config in sorted(in_force.items()))
        if key == self._in_force:
            return False
        await self.daemon.apply_fragments(in_force)
        self._in_force = key
        return True

    def _running(self) -> list[str]:
        return [f"{n} v{st.applied}" for n, st in sorted(self.fragments.items()) if st.applied is not None]

    async def _label_matches(self, sql: str) -> bool:
        ro = self._ro
        if ro is None:
            raise QueryError("the daemon is stopping")
        result = await self.daemon.sql(ro.run, sql, max_rows=1)
        return bool(result.rows)

    # -- keeping and reporting ---------------------------------------------------------------

    def _load(self) -> None:
        self.fragments = load_states(
            self.path, lambda name, body: self.verifier.check_fragment(body, CONFIG_PREFIX + name)
        )

    def _save(self) -> None:
        now = [(n, st.floor, st.floor_digest, st.good and digest(st.good)) for n, st in sorted(self.fragments.items())]
        if now != self._stored:
            save_store(self.path, self.fragments)
            self._stored = now

    def report(self, *, stopping: bool = False) -> dict[str, Any]:
        """The host's retained report: what it runs, its labels, what it refused (docs/fleet.md)."""
        errors = {name: label.error for name, label in sorted(self.labels.labels.items()) if label.error}
        return {
            "v": 1,
            "host": self.host,
            "ts": int(time.time()),
            "running": not stopping,
            "labels": self.labels.matched,
            "label_errors": errors,
            "fragments": {name: st.report() for name, st in sorted(self.fragments.items())},
            "received": self.received,
            "refused": self.refused,
        }

    async def _publish_report(self, *, stopping: bool = False) -> None:
        client = self._client
        if client is None or not (self._report_due or stopping):
            return
        self._report_due = False
        try:
            await client.publish(self.report_topic, dumps(self.report(stopping=stopping)), qos=1, retain=True)
        except Exception as err:  # the connection went; the next session reports again
            log.warning("fleet config: report not sent: %s", err)
            self._report_due = True
