"""`streamq run`: wires config, rings, sources, the scheduler and sinks; handles signals.

SIGTERM/SIGINT: stop the queries, let the sinks drain for a moment, persist,
exit 0 (within 5 s). SIGHUP: reload the config; queries whose SQL did not
change keep their diff base and counters (they live in the state store).
SIGUSR1: sinks reopen their files (logrotate). Under systemd: READY, STATUS, RELOADING, STOPPING, WATCHDOG.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import Any

import apsw

from .._version import __version__
from ..config.fragments import config_hash, merge
from ..config.sections import Config
from ..config.validation import Validator
from ..errors import ConfigError
from ..ring import Rings
from ..sinks import sink_class
from ..sinks.base import Sink, reopen_all
from ..sinks.delivery import Delivery
from ..sources import manager, table_sources
from ..sql.connection import connect
from ..sql.thread import SqlThread
from .checks import learned_columns
from .configuration import checked, configure_tables, load_config
from .decorators import Decorations
from .queries import QuerySpec, query_specs
from .scheduler import QueryRuntime, Scheduler
from .sinkhooks import SinkHooks
from .state import StateStore
from .systemd import Notifier, status_line

log = logging.getLogger("streamq.daemon.app")
SHUTDOWN_BUDGET = 4.0  # seconds for draining sinks at stop; the process exits within 5 s


def _queries(n: int) -> str:
    return f"{n} query" if n == 1 else f"{n} queries"


class Daemon:
    """The running daemon; also the typed handle (streamq.sql.session.DaemonHandle) its tables see."""

    def __init__(self, config: Config) -> None:
        self.config = config  # the config file merged with the fleet's fragments: what runs
        self.local_config = config  # the config file alone
        self.fragments: dict[str, Config] = {}  # fleet fragments in force, by name (streamq.daemon.fleet_config)
        self._applying = asyncio.Lock()  # a SIGHUP and a fragment apply one at a time
        self._skipped: dict[str, str] = {}  # the config file's pack queries that cannot run here
        self.host = config.host_identifier
        self.rings = Rings(config.rings.capacity, config.rings.max_age)
        self.sql = SqlThread()
        self.started = int(time.time())
        self._reads: dict[str, list[str]] = {}  # query -> the event tables it reads
        self.instance_id: str | None = None
        self.sinks: dict[str, Sink] = {}
        self.deliveries: dict[str, Delivery] = {}
        self._delivery_tasks: list[asyncio.Task] = []
        self._source_tasks: dict[str, asyncio.Task] = {}
        self._mode_log: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self.decorations = Decorations()
        self.config_hash = config_hash(config, {})
        self.control: Any = None
        self.fleet: Any = None
        self.fleet_config: Any = None
        configure_tables(config)
        self.web: Any = None
        self.metrics: Any = None
        self.notifier = Notifier()

    @property
    def queries(self) -> dict[str, QueryRuntime]:
        scheduler = getattr(self, "scheduler", None)
        return scheduler.queries if scheduler is not None else {}

    # -- start --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open everything; on failure close what was opened and remove a state file made just now."""
        state_path = self.config.state.path
        fresh_state = not os.path.exists(state_path)
        try:
            await self._start(state_path)
        except BaseException:
            await self._abort_start()
            if fresh_state:
                for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
                    with contextlib.suppress(OSError):
                        os.unlink(state_path + suffix)
            raise

    async def _start(self, state_path: str) -> None:
        report = checked(self.config)  # what `run --check` finds stops the start here, before any file
        manager.declare_stream_tables(self.config.sources, learned_columns(self.config))
        self.conn = await self.sql(connect, rings=self.rings, daemon=self)
        self._skipped = report.skipped
        specs = {n: s for n, s in query_specs(self.config).items() if n not in report.skipped}
        # Sources are built (not started) first: a table no source fills is a config error,
        # and it must come before any file is created.
        sources = await self._build_sources(self.config, specs)
        try:
            self.store = await self.sql(StateStore, state_path)
        except (OSError, apsw.Error) as err:
            raise self._path_error(("state", "path"), state_path, err) from None
        self.instance_id = await self.sql(self.store.instance_uuid)
        hooks = SinkHooks(self)
        self.scheduler = Scheduler(
            self.sql,
            self.conn,
            self.store,
            self.config.schedule,
            host=self.host,
            notify_sinks=hooks.wake,
            decorations=lambda: self.decorations.current(self.conn, self.config.decorators),
            on_store_error=hooks.store_error,
            outbox_room=hooks.room,
        )
        await self._start_sinks(self.config)
        self.scheduler.hold_all(specs.values(), self._reads)  # before the sources run
        self._run_sources(sources)
        await self.sql(self.decorations.load, self.conn, self.config.decorators)
        for spec in specs.values():
            await self.scheduler.add(spec)
        from .fleet_config import start_fleet_config

        # Before the broker is reached: the fragments applied last time run from the start.
        self.fleet_config = await start_fleet_config(self)
        from .control import start_control

        self.control = await start_control(self)  # last: its requests may read every part above
        from .fleet import start_fleet

        self.fleet = await start_fleet(self)
        if self.config.web.listen is not None:
            from ..web.server import start_web  # aiohttp only when a console is asked for

            self.web = await start_web(self)
        if self.config.metrics.listen is not None:
            from .metrics import start_metrics

            self.metrics = await start_metrics(self, self.config.metrics.listen)
        log.info("streamq %s running %s as %s", __version__, _queries(len(self.scheduler.queries)), self.host)

    def _path_error(self, key: tuple[str, ...], path: str, err: BaseException) -> ConfigError:
        reason = getattr(err, "strerror", None) or str(err)
        return Validator(self.config.text, self.config.path or "<config>").fail(key, f"cannot open {path}: {reason}")

    async def _abort_start(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
        for task in self._delivery_tasks:
            task.cancel()
        await asyncio.gather(*self._delivery_tasks, return_exceptions=True)
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                await sink.close()
        await manager.stop(self._source_tasks.values())
        if hasattr(self, "scheduler"):
            await self.scheduler.stop()
        for name in ("store", "conn"):
            if hasattr(self, name):
                with contextlib.suppress(Exception):
                    await self.sql(getattr(self, name).close)
        self.sql.close()

    async def _start_sinks(self, config: Config) -> None:
        for name, options in config.sinks.items():
            sink = sink_class(options.type)(name, options, host=self.host)
            try:
                await sink.start()
            except OSError as err:
                raise self._path_error(("sinks", name, "path"), getattr(options, "path", name), err) from None
            self.sinks[name] = sink
            delivery = Delivery(sink, self.store, self.sql, max_backlog_rows=options.max_backlog_rows)
            self.deliveries[name] = delivery
            self._delivery_tasks.append(asyncio.create_task(delivery.run(), name=f"sink:{name}"))
            delivery.wake.set()  # deliver what an earlier run left in the outbox

    async def _build_sources(self, config: Config, specs: dict[str, QuerySpec]) -> list:
        fillable = table_sources(config.sources)
        wanted: set[str] = set()
        for spec in specs.values():
            wanted.update(t for t in spec.on if t in fillable)
            try:
                read = await self.sql(self.conn.tables_read, spec.sql)
            except Exception:  # a broken query is reported when it runs
                continue
            self._reads[spec.name] = sorted(t for t in read if t in fillable)
            wanted.update(self._reads[spec.name])
        for key, options in config.sources.items():
            if options.enabled:
                wanted.update(t for t, (k, _) in fillable.items() if k == key)
        new = sorted(t for t in wanted if t not in self._source_tasks)
        return manager.build(config.sources, self.rings, new)

    def _run_sources(self, sources: list) -> None:
        for source in sources:
            self.rings.ring(source.table)  # so queries see the ring even before its first event
        for source in sources:
            self._source_tasks[source.table] = manager.start([source])[0]
        if sources:
            tables = [s.table for s in sources]
            self._mode_log = asyncio.create_task(self._log_source_modes(tables), name="source-modes")

    async def _log_source_modes(self, tables: list[str], timeout: float = 5.0) -> None:
        """One line per source once it says how it runs: netlink, inotify, or polling (and why)."""
        pending = set(tables)
        end = time.monotonic() + timeout
        while pending and time.monotonic() < end:
            for table in sorted(pending):
                status = self.rings.status.get(table)
                if status is not None and status.mode:
                    log.info("source %s fills %s: %s", status.source, table, status.mode)
                    pending.discard(table)
            await asyncio.sleep(0.05)
        for table in sorted(pending):
            status = self.rings.status.get(table)
            log.warning("source for %s has not started: %s", table, status.last_error if status else "no status")

    def _log_sources_stopped(self) -> None:
        for table in sorted(self._source_tasks):
            ring, status = self.rings.get(table), self.rings.status.get(table)
            seen, dropped = (ring.seen, ring.dropped) if ring is not None else (0, 0)
            source = status.source if status else table
            log.info("source %s stopped: %s: %d events seen, %d dropped", source, table, seen, dropped)

    async def _start_sources(self, config: Config, specs: dict[str, QuerySpec], changed: list[QuerySpec]) -> None:
        sources = await self._build_sources(config, specs)
        self.scheduler.hold_all(changed, self._reads)  # before the sources run
        self._run_sources(sources)

    # -- run / stop / reload ------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: reopen_all(self.sinks.values()))
        await self.start()
        self.notifier.ready(status_line(self))
        memory = asyncio.create_task(self._watch_memory(), name="memory-budget")
        watchdog = asyncio.create_task(self.notifier.watchdog(lambda: status_line(self)), name="systemd-watchdog")
        try:
            while not self._stop.is_set():
                stop = asyncio.create_task(self._stop.wait())
                reload = asyncio.create_task(self._reload.wait())
                await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                reload.cancel()
                if self._reload.is_set() and not self._stop.is_set():
                    self._reload.clear()
                    self.notifier.reloading()
                    await self.reload()
                    self.notifier.ready(status_line(self))
        finally:
            memory.cancel()
            watchdog.cancel()
            self.notifier.stopping()
            await self.shutdown()
        return 0

    def stop(self) -> None:
        self._stop.set()

    async def reload(self) -> None:
        path = self.config.path if self.config.path and not self.config.path.startswith("<") else None
        try:
            new = load_config(path)
            report = checked(new)
        except ConfigError as err:
            log.error("reload refused, keeping the running config: %s", err)
            return
        self.local_config = new
        await self._apply(merge(new, self.fragments), report.skipped)
        if self.fleet_config is not None:
            self.fleet_config.reconsider()  # its fragments are checked against this config's sinks
        log.info("config reloaded: %s", _queries(len(self.scheduler.queries)))

    async def apply_fragments(self, fragments: dict[str, Config]) -> None:
        """Run the config file with ``fragments`` (name -> fragment) merged in, as a SIGHUP would."""
        self.fragments = dict(fragments)
        await self._apply(merge(self.local_config, self.fragments), self._skipped)

    async def _apply(self, new: Config, skipped: dict[str, str]) -> None:
        """Switch to ``new`` but its ``skipped`` pack queries: sinks restart if changed; only the
        queries that changed restart."""
        async with self._applying:
            self._skipped = skipped
            old_specs = {name: rt.spec for name, rt in self.scheduler.queries.items()}
            new_specs = {n: s for n, s in query_specs(new).items() if n not in skipped}
            if new.sinks != self.config.sinks:
                await self._stop_sinks()
                self.sinks, self.deliveries, self._delivery_tasks = {}, {}, []
                await self._start_sinks(new)
            decorators_changed = new.decorators != self.config.decorators
            self.config = new
            configure_tables(new)
            self.config_hash = config_hash(self.local_config, self.fragments)
            await self._start_sources(
                new, new_specs, [spec for name, spec in new_specs.items() if old_specs.get(name) != spec]
            )
            for name in old_specs.keys() - new_specs.keys():
                await self.scheduler.remove(name)
            for name, spec in new_specs.items():
                if old_specs.get(name) != spec:
                    await self.scheduler.remove(name)
                    await self.scheduler.add(spec)
            if decorators_changed:
                await self.sql(self.decorations.load, self.conn, self.config.decorators)

    async def _watch_memory(self) -> None:
        budget = self.config.schedule.memory_mb * 1024 * 1024
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            await asyncio.sleep(5)
            with open("/proc/self/statm", "rb") as f:
                rss = int(f.read().split()[1]) * page
            if rss > budget:
                for ring in self.rings.values():
                    if ring.capacity > 1000:
                        lost = ring.resize(ring.capacity // 2)
                        log.warning(
                            "memory over budget: ring %s shrunk to %d (%d events dropped)",
                            ring.name,
                            ring.capacity,
                            lost,
                        )

    async def _stop_sinks(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_BUDGET / 2
        for delivery in self.deliveries.values():
            await delivery.drain(max(0.05, deadline - time.monotonic()))
        for task in self._delivery_tasks:
            task.cancel()
        await asyncio.gather(*self._delivery_tasks, return_exceptions=True)
        for sink in self.sinks.values():
            try:
                await asyncio.wait_for(sink.close(), 1.0)
            except Exception as err:
                log.warning("sink %s: close failed: %s", sink.name, err)

    async def shutdown(self) -> None:
        # Before anything that waits for the SQL thread: a query running now is interrupted.
        self.scheduler.stopping = True
        if self.metrics is not None:
            await self.metrics.stop()
        if self.control is not None:
            await self.control.stop()  # first: no request may start while the rest closes
        if self.web is not None:
            await self.web.stop()
        if self.fleet_config is not None:
            await self.fleet_config.stop()  # while the fleet connection can still carry its last report
        if self.fleet is not None:
            await self.fleet.stop()
        await self.scheduler.stop()
        await self._stop_sinks()
        if self._mode_log is not None:
            self._mode_log.cancel()
        await manager.stop(self._source_tasks.values())
        self._log_sources_stopped()
        await self.sql(self.store.close)
        await self.sql(self.conn.close)
        self.sql.close()
