"""The Docker Engine API over its Unix socket, for the docker_* tables.

The client is docker-py's low-level ``APIClient`` (Docker's own Python SDK):
it negotiates the API version with whatever engine answers, decodes chunked
and streamed answers, and maps the engine's errors. It is imported on first
use, so a query that reads no docker_* table never pays for it.

Every call has a short timeout. A missing or silent engine is not an error
for a query: the tables return no rows and one warning says why, once per
socket and reason until the engine answers again.

The socket is, in order: :func:`configure` (the ``[docker]`` config
section), the environment variable ``STREAMQ_DOCKER_SOCKET``, then Docker's
default ``/var/run/docker.sock``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..errors import StreamqError

DEFAULT_SOCKET = "/var/run/docker.sock"
SOCKET_ENV = "STREAMQ_DOCKER_SOCKET"
DEFAULT_TIMEOUT = 5.0
# After an engine failed to answer, calls fail at once for this long: a query joining
# several docker_* tables, or a schedule, does not wait out one timeout per table.
QUIET_AFTER_FAILURE = 10.0

_settings: dict[str, Any] = {"socket": None, "timeout": DEFAULT_TIMEOUT}
_clients: dict[tuple[str, float], Any] = {}
_lock = threading.Lock()
_noted: set[str] = set()


def _log():
    # logging costs ~5 ms to import: paid by the first warning, not by the first query.
    import logging

    return logging.getLogger("streamq.docker")


class DockerUnavailable(StreamqError):
    """No engine answers on the socket (absent, refused, timed out); the message says which."""


def configure(*, socket: str | None = None, timeout: float | None = None) -> None:
    """Set the socket and the per-call timeout (``None`` keeps the environment's or the default)."""
    _settings["socket"] = socket
    _settings["timeout"] = DEFAULT_TIMEOUT if timeout is None else float(timeout)


def socket_path() -> str:
    return _settings["socket"] or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def engine() -> Engine:
    """The client for the configured socket; DockerUnavailable when nothing answers there."""
    path = socket_path()
    timeout = _settings["timeout"]
    if not os.path.exists(path):
        raise DockerUnavailable(f"no Docker engine socket at {path}")
    key = (path, timeout)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Engine(path, timeout)
    return client


def note(err: DockerUnavailable) -> None:
    """Warn once per reason that the docker_* tables are empty; a later outage warns again."""
    message = f"docker: {err}; docker_* tables return no rows"
    if message not in _noted:
        _noted.add(message)
        _log().warning("%s", message)


class Engine:
    """One engine: JSON of the API calls the tables need, or None for an object that is gone."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._api: Any = None
        self._failure: tuple[float, DockerUnavailable] | None = None  # (until, what happened)

    def _client(self) -> Any:
        if self._api is None:
            import docker

            # version="auto" asks the engine which API version it speaks (one /version call).
            self._api = self._call(
                lambda: docker.APIClient(base_url=f"unix://{self.path}", version="auto", timeout=self.timeout)
            )
        return self._api

    def _call(self, fn) -> Any:
        import docker.errors
        import requests

        if self._failure is not None:
            until, failure = self._failure
            if time.monotonic() < until:
                raise DockerUnavailable(str(failure))
            self._failure = None
        try:
            result = fn()
        except docker.errors.NotFound:
            return None  # removed between listing and reading it
        except docker.errors.APIError as err:
            _log().debug("docker: %s", err)
            return None  # the engine refused this one object: skip it, keep the query
        except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as err:
            failure = DockerUnavailable(f"the engine at {self.path} did not answer ({_reason(err)})")
            self._failure = (time.monotonic() + QUIET_AFTER_FAILURE, failure)
            raise failure from err
        _noted.clear()  # it answers: the next outage is news again
        return result

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``APIClient.<method>(*args, **kwargs)``: parsed JSON, None if the object is gone."""
        api = self._client()
        return self._call(lambda: getattr(api, method)(*args, **kwargs))


def _reason(err: BaseException) -> str:
    """What went wrong, in a few words: requests wraps the OS error in two layers of text."""
    text = str(err)
    if "timed out" in text.lower():
        return "timed out"
    for known in ("Connection refused", "No such file or directory", "Permission denied"):
        if known in text:
            return known.lower()
    return text


def strip_digest(value: str | None) -> str | None:
    """An image or layer id without its ``sha256:`` prefix (osquery's form)."""
    if value and value.startswith("sha256:"):
        return value[7:]
    return value


def unix_time(text: str | None) -> int | None:
    """An RFC 3339 time from the engine (nanoseconds, ``Z`` or an offset) as unix seconds."""
    parsed = parse_time(text)
    return None if parsed is None else int(parsed[0])


def parse_time(text: str | None) -> tuple[int, int] | None:
    """(unix seconds, nanoseconds) of an engine timestamp; None for empty or Go's zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    head, dot, rest = text.partition(".")
    nanos = 0
    zone = ""
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        nanos = int(rest[:digits].ljust(9, "0")[:9]) if digits else 0
        zone = rest[digits:]
    else:
        for sign in ("Z", "+", "-"):
            cut = head.find(sign, 10)
            if cut > 0:
                head, zone = head[:cut], head[cut:]
                break
    zone = "+00:00" if zone in ("Z", "") else zone
    try:
        from datetime import datetime

        when = datetime.fromisoformat(head + zone)
    except ValueError:
        return None
    return int(when.timestamp()), nanos


def is_hex_prefix(value: Any) -> bool:
    """Whether a constraint value can be an id or id prefix (what osquery passes to the engine)."""
    return isinstance(value, str) and 0 < len(value) <= 64 and all(c in "0123456789abcdefABCDEF" for c in value)
