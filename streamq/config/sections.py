"""The typed sections of a config file, each with its defaults in one place.

Sources and sinks declare their own options next to their code (see
streamq.config.options); the sections here belong to the engine and the
daemon: rings, host, state, schedule, queries, labels, packs, decorators, control, fleet, docker, web,
metrics.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..stream.spec import parse_emit, parse_grace, parse_limit, parse_window
from .options import (
    BOOL,
    REQUIRED,
    STRING,
    SinkOptions,
    SourceOptions,
    duration,
    non_negative_int,
    one_of,
    option,
    percent,
    positive_duration,
    positive_int,
    string_list,
)


def checked(parse: Any) -> Any:
    """A check that validates with ``parse`` and keeps the text as written."""

    def check(value: Any) -> Any:
        parse(value)
        return value

    return check


@dataclass(frozen=True)
class RingOptions:
    capacity: int = option(100_000, positive_int, doc="Rows each event table keeps.")
    max_age: float = option(3600.0, duration, doc="Seconds a row stays in its ring.")


@dataclass(frozen=True)
class HostOptions:
    identifier: str | None = option(None, STRING, doc="The host's name in results; the hostname by default.")


@dataclass(frozen=True)
class StateOptions:
    path: str = option("streamq-state.db", STRING, doc="SQLite file holding diff bases, counters and the outbox.")


@dataclass(frozen=True)
class ScheduleOptions:
    epoch: int = option(0, non_negative_int)
    splay_percent: float = option(10.0, percent)
    deadline: float = option(60.0, positive_duration, doc="Default per-run deadline of a query.")
    denylist_after: int = option(3, positive_int)
    denylist_for: float = option(3600.0, duration)
    memory_mb: int = option(512, positive_int, doc="RSS budget; past it the rings shrink.")
    max_rows_per_run: int = option(
        1000, positive_int, doc="New event rows one run of a query reads; a backlog goes through in such pieces."
    )


@dataclass(frozen=True)
class QueryOptions:
    sql: str = option(REQUIRED, STRING)
    query: str | None = option(None, STRING, doc="osquery's name for sql.")
    interval: float | None = option(None, positive_duration)
    on: list = option([], string_list, doc="Event tables whose new rows trigger a run.")
    debounce: float = option(0.02, duration)
    mode: str | None = option(None, one_of("diff", "snapshot", "stream"))
    snapshot: bool = option(False, BOOL, doc="osquery's spelling of mode = 'snapshot'.")
    sinks: list | None = option(None, string_list, doc="Sink names; every sink by default.")
    removed: bool = option(True, BOOL)
    format: str = option("event", one_of("event", "batch"))
    numerics: bool = option(True, BOOL)
    deadline: float | None = option(None, positive_duration)
    platform: str | None = option(None, STRING)
    version: str | None = option(None, STRING)
    description: str | None = option(None, STRING)
    value: str | None = option(None, STRING)
    shard: int | None = option(None, positive_int)
    denylist: bool = option(True, BOOL)
    # Streaming (docs/streaming.md): checked by streamq.stream.spec, as the CLI's flags are.
    window: str | None = option(None, checked(parse_window), doc='"tumble 1m", "hop 10m every 1m" or "session 30s".')
    window_key: list = option([], string_list, doc="Columns a session window is kept per value of.")
    emit: str = option("close", checked(parse_emit), doc="close: each window once; changes: updates, then final.")
    grace: float = option(0.0, checked(parse_grace), doc="How long the watermark waits for late rows.")
    dedup: list = option([], string_list, doc="Result columns that make a row the same: emitted once.")
    dedup_for: float | None = option(None, positive_duration, doc="Forget a dedup key after this long.")
    limit: str | None = option(None, checked(parse_limit), doc="At most N rows per period, e.g. 10/1m.")


@dataclass(frozen=True)
class PackOptions:
    paths: list = option([], string_list, doc="osquery pack files (globs allowed).")
    inline: dict = option({}, internal=True, doc="Packs written in the config as [packs.NAME]: osquery's pack objects.")


@dataclass(frozen=True)
class LabelOptions:
    """[labels.NAME]: the host is a member while the query returns rows (fleet fragments, docs/fleet.md)."""

    sql: str = option(REQUIRED, STRING, doc="Read-only SQL; any row makes the host a member.")
    interval: float = option(60.0, positive_duration, doc="How often membership is evaluated again.")
    description: str | None = option(None, STRING)


@dataclass(frozen=True)
class PrometheusTargetsOptions:
    """osquery's prometheus_targets: what `SELECT * FROM prometheus_metrics` scrapes."""

    urls: list = option([], string_list, doc="Prometheus endpoints to scrape.")
    timeout: float = option(1.0, positive_duration, doc="Seconds to wait for each endpoint.")


def signature_groups(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ValueError('expected a table like { group = ["/etc/streamq/rules.yar"] }')
    return {str(group): string_list(files) for group, files in value.items()}


@dataclass(frozen=True)
class YaraOptions:
    """osquery's yara config: named groups of rule files for `sig_group = NAME`."""

    signatures: dict = option({}, signature_groups, doc="Group name -> rule files (source or compiled).")


def interval_decorators(value: Any) -> dict[float, list[str]]:
    if not isinstance(value, dict):
        raise ValueError('expected a table like { "3600" = ["SELECT ..."] }')
    return {duration(seconds): string_list(queries) for seconds, queries in value.items()}


@dataclass(frozen=True)
class DecoratorOptions:
    load: list = option([], string_list)
    always: list = option([], string_list)
    interval: dict = option({}, interval_decorators)


@dataclass(frozen=True)
class ControlOptions:
    """The control socket (streamq.daemon.control); path None: streamq.client.default_path()."""

    enabled: bool = option(True, BOOL)
    path: str | None = option(None, STRING)
    max_rows: int = option(100_000, positive_int)
    deadline: float = option(10.0, positive_duration)
    max_reply_bytes: int = option(
        16 * 1024 * 1024, positive_int, doc="Largest reply (about, as JSON); also caps fleet replies."
    )
    idle_timeout: float = option(30.0, positive_duration, doc="Close a client that sends no full request this long.")


@dataclass(frozen=True)
class FleetOptions:
    """Fleet queries over MQTT v5 (streamq.daemon.fleet, docs/fleet.md)."""

    enabled: bool = option(True, BOOL)
    url: str | None = option(None, STRING)
    key: str | None = option(None, STRING)
    key_file: str | None = option(None, STRING)
    allow_unsigned: bool = option(False, BOOL)
    max_age: float = option(30.0, positive_duration)
    client_id: str | None = option(None, STRING)
    status: bool = option(True, BOOL)
    accept_config: bool = option(False, BOOL, doc="Run the signed config fragments `streamq fleet push` sends.")
    key_bytes: bytes | None = option(None, internal=True, doc="The key, read from key or key_file.")


@dataclass(frozen=True)
class DockerOptions:
    """The Docker engine the docker_* tables read (streamq.host.dockerapi)."""

    socket: str | None = option(
        None, STRING, doc="The engine's Unix socket; $STREAMQ_DOCKER_SOCKET or /var/run/docker.sock by default."
    )
    timeout: float = option(5.0, positive_duration, doc="Per API call; a silent engine costs one timeout.")


def listen_address(value: Any) -> str:
    """``"HOST:PORT"`` (``"[::1]:PORT"`` for IPv6), checked; kept as written."""
    parse_listen(STRING(value))
    return value


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8765"`` -> ("127.0.0.1", 8765); ValueError with a message for a person."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not an address like 127.0.0.1:8765")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


@dataclass(frozen=True)
class WebOptions:
    """The web console (streamq.web, docs/web.md); listen None: not served."""

    listen: str | None = option(None, listen_address, doc="HOST:PORT to serve the console on, e.g. 127.0.0.1:8765.")
    allow_remote: bool = option(False, BOOL, doc="Allow a non-loopback listen address (needs cert and key).")
    cert: str | None = option(None, STRING, doc="TLS certificate chain (PEM); with key, the console is HTTPS.")
    key: str | None = option(None, STRING, doc="TLS private key (PEM).")
    token_file: str | None = option(None, STRING, doc="File holding the login token; a random one is printed if unset.")
    session_ttl: float = option(43200.0, positive_duration, doc="How long a browser session lasts.")
    max_rows: int = option(100_000, positive_int, doc="Row cap per query; a query may ask for fewer.")
    max_reply_bytes: int = option(
        16 * 1024 * 1024,
        positive_int,
        doc="Byte cap per reply (its JSON, about), counted as [control]'s is; past it the rows that fit are sent, marked truncated.",
    )
    deadline: float = option(10.0, positive_duration, doc="Time cap per query.")
    max_streams: int = option(16, positive_int, doc="Live streams at once; past it the oldest is closed.")


def web_problem(web: WebOptions) -> tuple[str, str] | None:
    """What is wrong with ``web`` as a whole, as (key, message); None when nothing is."""
    if web.listen is None:
        return None
    host, _ = parse_listen(web.listen)
    if not is_loopback(host) and not web.allow_remote:
        return "listen", f"{host} is not a loopback address: set allow_remote = true (and cert, key) to serve it"
    if web.allow_remote and not is_loopback(host) and not (web.cert and web.key):
        return "cert", "a console reachable from other hosts needs TLS: set cert and key"
    if bool(web.cert) != bool(web.key):
        return ("key" if web.cert else "cert"), "set cert and key together"
    return None


@dataclass(frozen=True)
class MetricsOptions:
    """Prometheus metrics (streamq.daemon.metrics); off while listen is None."""

    listen: str | None = option(None, listen_address, doc="ADDRESS:PORT to serve /metrics on, e.g. 127.0.0.1:9464.")

    @classmethod
    def from_flag(cls, listen: str) -> MetricsOptions:
        """``streamq run --metrics ADDR:PORT``, checked as the config key is."""
        try:
            parse_listen(listen)
        except ValueError as err:
            raise ConfigError(f"--metrics: {err}") from None
        return cls(listen=listen)


# Top-level sections with one typed value each: name -> class.
SECTIONS: dict[str, type] = {
    "rings": RingOptions,
    "host": HostOptions,
    "state": StateOptions,
    "schedule": ScheduleOptions,
    "packs": PackOptions,
    "decorators": DecoratorOptions,
    "control": ControlOptions,
    "fleet": FleetOptions,
    "docker": DockerOptions,
    "prometheus_targets": PrometheusTargetsOptions,
    "yara": YaraOptions,
    "web": WebOptions,
    "metrics": MetricsOptions,
}


@dataclass
class Config:
    """A validated configuration.

    ``sources`` is keyed by config key (``"process"``) or, for sources configured per
    instance, ``"jsonl.app"``; ``sinks`` and ``queries`` by their names. A section
    absent from the file holds its defaults, except ``fleet``, which is None.
    """

    path: str | None = None
    text: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, SourceOptions] = field(default_factory=dict)
    sinks: dict[str, SinkOptions] = field(default_factory=dict)
    queries: dict[str, QueryOptions] = field(default_factory=dict)
    labels: dict[str, LabelOptions] = field(default_factory=dict)
    rings: RingOptions = field(default_factory=RingOptions)
    host: HostOptions = field(default_factory=HostOptions)
    state: StateOptions = field(default_factory=StateOptions)
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    packs: PackOptions = field(default_factory=PackOptions)
    decorators: DecoratorOptions = field(default_factory=DecoratorOptions)
    control: ControlOptions = field(default_factory=ControlOptions)
    fleet: FleetOptions | None = None
    docker: DockerOptions = field(default_factory=DockerOptions)
    prometheus_targets: PrometheusTargetsOptions = field(default_factory=PrometheusTargetsOptions)
    yara: YaraOptions = field(default_factory=YaraOptions)
    web: WebOptions = field(default_factory=WebOptions)
    metrics: MetricsOptions = field(default_factory=MetricsOptions)

    @property
    def host_identifier(self) -> str:
        return self.host.identifier or socket.gethostname()

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)
