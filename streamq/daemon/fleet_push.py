"""The pushing side of fleet config: ``streamq fleet push`` and ``streamq fleet status``.

A push publishes one signed fragment, retained, on ``streamq/fleet/config/{name}``, with
the next version: one above the newest that the broker holds or that any host reports,
so a broker that lost its retained messages does not send hosts an older version. With
``wait`` it then reads the hosts' retained reports (``streamq/fleet/report/{host}``) until
every online host that reports fleet config has said what it did with that version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..config.fragments import label_problem, name_problem, parse_fragment
from ..errors import ConfigError
from ..mqtt import parse_url
from .fleet_client import _note_status, _session
from .fleet_protocol import CONFIG_PREFIX, REPORT_PREFIX, FleetError, is_status_topic, make_fragment, topic_safe


@dataclass
class FleetView:
    """What the broker's retained messages say: hosts' statuses and reports, and the fragments."""

    statuses: dict[str, str] = field(default_factory=dict)  # host -> online | offline
    reports: dict[str, dict] = field(default_factory=dict)  # host -> its last report
    fragments: dict[str, dict] = field(default_factory=dict)  # name -> the retained fragment's body

    def take(self, message: Any) -> None:
        topic = message.topic.value
        if is_status_topic(topic):
            _note_status(self.statuses, topic, message.payload)
        elif topic.startswith(REPORT_PREFIX):
            _take_json(self.reports, topic[len(REPORT_PREFIX) :], message.payload)
        elif topic.startswith(CONFIG_PREFIX):
            _take_json(self.fragments, topic[len(CONFIG_PREFIX) :], message.payload)

    @property
    def hosts(self) -> list[str]:
        return sorted(self.statuses.keys() | self.reports.keys())

    def entry(self, host: str, name: str) -> dict | None:
        """Host ``host``'s report on fragment ``name``, if it gave one."""
        entry = (self.reports.get(host) or {}).get("fragments", {}).get(name)
        return entry if isinstance(entry, dict) else None

    def newest(self, name: str) -> int:
        """The newest version of ``name`` the broker holds or any host reports; 0 for none."""
        versions = [self.fragments.get(name, {}).get("version")]
        versions += [(self.entry(host, name) or {}).get("version") for host in self.reports]
        return max((v for v in versions if isinstance(v, int) and not isinstance(v, bool)), default=0)


def _take_json(into: dict[str, dict], key: str, payload: Any) -> None:
    if not payload:  # a cleared retained message
        into.pop(key, None)
        return
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(bytes(payload))
        if isinstance(body, dict):
            into[key] = body


@dataclass
class PushResult:
    name: str
    version: int
    view: FleetView
    awaited: set[str] = field(default_factory=set)  # hosts that were to report the version
    done: dict[str, dict] = field(default_factory=dict)  # host -> its report entry on the version

    @property
    def missing(self) -> list[str]:
        return sorted(self.awaited - self.done.keys())

    @property
    def refused(self) -> dict[str, str]:
        return {h: str(e.get("reason") or "") for h, e in sorted(self.done.items()) if e.get("state") == "refused"}

    @property
    def complete(self) -> bool:
        return not self.missing and not self.refused


def check_fragment_text(name: str, toml: str) -> None:
    """The fragment as the hosts will validate it, minus their sources and sinks: ConfigError if not."""
    parse_fragment(toml, name)


async def push(
    url: str,
    name: str,
    *,
    key: bytes,
    toml: str | None,
    hosts: list[str] | None = None,
    label: str | None = None,
    wait: bool = False,
    timeout: float = 10.0,
) -> PushResult:
    """Publish fragment ``name`` (``toml`` None: withdraw it), then with ``wait`` collect the hosts' reports."""
    import aiomqtt

    problem = name_problem(name) or (label_problem(label) if label else None)
    if problem:
        raise ConfigError(problem)
    for host in hosts or ():
        if not topic_safe(host):
            raise ConfigError(f"--host {host!r} cannot be a host identifier (an MQTT topic level)")
    if toml is not None:
        check_fragment_text(name, toml)
    view = FleetView()
    topics = [CONFIG_PREFIX + name, REPORT_PREFIX + "+"]
    async with _session(aiomqtt, parse_url(url)[0], timeout, topics, view.take) as (client, statuses, messages):
        view.statuses = statuses
        if toml is None and not view.newest(name):
            raise FleetError(f"no fragment {name!r}: neither the broker nor any host knows it")
        body = make_fragment(name, view.newest(name) + 1, key=key, toml=toml, hosts=hosts, label=label)
        result = PushResult(name, body["version"], view)
        await client.publish(CONFIG_PREFIX + name, json.dumps(body).encode(), qos=1, retain=True)
        if wait:
            result.awaited = _awaited(view, hosts)
            await _collect(result, messages, timeout)
    return result


def _awaited(view: FleetView, hosts: list[str] | None) -> set[str]:
    """The hosts to hear from: the named ones, else every online host that reports fleet config."""
    if hosts:
        return {h for h in hosts if view.statuses.get(h) != "offline"}
    return {h for h in view.reports if view.statuses.get(h) == "online"}


async def _collect(result: PushResult, messages: Any, timeout: float) -> None:
    """Read reports until every awaited host settled the version or went offline, or ``timeout``."""
    view = result.view

    def waiting() -> set[str]:
        for host in result.awaited - result.done.keys():
            entry = view.entry(host, result.name) or {}
            version = entry.get("version")
            if isinstance(version, int) and version >= result.version and entry.get("state") != "pending":
                result.done[host] = entry
        return {h for h in result.awaited - result.done.keys() if view.statuses.get(h) != "offline"}

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while waiting():
                view.take(await anext(messages))


async def status(url: str, *, timeout: float = 5.0) -> FleetView:
    """The broker's retained view: statuses, reports, fragments."""
    import aiomqtt

    view = FleetView()
    topics = [CONFIG_PREFIX + "+", REPORT_PREFIX + "+"]
    async with _session(aiomqtt, parse_url(url)[0], timeout, topics, view.take) as (_, statuses, _messages):
        view.statuses = statuses
    return view


STATUS_COLUMNS = ["host", "status", "last_seen", "labels", "fragment", "version", "state", "applied", "reason"]


def status_rows(view: FleetView) -> list[list[Any]]:
    """One row per host and fragment: what it runs, refused or has yet to take (pending)."""
    import datetime

    rows = []
    for host in view.hosts:
        report = view.reports.get(host)
        status = view.statuses.get(host)
        if report is None:
            rows.append([host, status, None, None, None, None, "no report", None, "fleet config not accepted here"])
            continue
        ts = report.get("ts")
        seen = datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat() if isinstance(ts, int) else None
        labels = ",".join(str(x) for x in report.get("labels") or [])
        names = sorted(set(view.fragments) | set(report.get("fragments") or {}))
        for name in names:
            entry = view.entry(host, name) or {}
            state, reason = entry.get("state"), entry.get("reason")
            broker = view.fragments.get(name, {}).get("version")
            if isinstance(broker, int) and not (isinstance(entry.get("version"), int) and entry["version"] >= broker):
                state, reason = "pending", f"version {broker} not taken yet"
                # Reported since the push, yet not taken, with an error: the host refused it (a bad
                # signature leaves no version to report, so without this it would look pending forever).
                pushed = view.fragments[name].get("ts")
                if entry.get("last_error") and isinstance(ts, int) and isinstance(pushed, int) and ts >= pushed:
                    state, reason = "refused", f"version {broker}: {entry['last_error']}"
            rows.append([host, status, seen, labels, name, entry.get("version"), state, entry.get("applied"), reason])
        if not names:
            rows.append([host, status, seen, labels, None, None, None, None, None])
    return rows
