"""Running under systemd: sd_notify (READY, WATCHDOG, STATUS, RELOADING, STOPPING) and journald logs.

sd_notify is one datagram to the unix socket named by ``$NOTIFY_SOCKET`` (``@`` means
the abstract namespace); that is the whole protocol, so it is written here rather
than pulled in as a dependency. Outside systemd (no ``$NOTIFY_SOCKET``) every call
is a no-op.

Watchdog: with ``WatchdogSec=`` systemd sets ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``);
the daemon pings at half that interval from a task on its event loop, the loop that
runs the sources, the scheduler and the sinks, so a stuck loop misses its pings and
systemd restarts the service.

Logs: when stderr is the journal (``$JOURNAL_STREAM`` names stderr's device and inode),
lines carry journald's ``<N>`` priority prefix and no timestamp of their own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from .handle import DaemonServices

# logging level -> syslog priority, as sd-daemon.h's SD_ERR ... SD_DEBUG prefixes
_PRIORITIES = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class Notifier:
    """Messages to the service manager; ``enabled`` is False outside systemd."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        path = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self.enabled = bool(path) and (path.startswith(("/", "@")))
        self.watchdog_interval: float | None = None
        usec, pid = environ.get("WATCHDOG_USEC"), environ.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000 / 2  # ping at half the interval

    def send(self, **fields: Any) -> bool:
        """``send(READY=1, STATUS="...")``: one datagram of KEY=value lines; False if it did not go."""
        if not self.enabled:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError:
            return False  # the manager went away: nothing to tell, nothing to fail for
        return True

    def ready(self, status: str) -> None:
        self.send(READY=1, STATUS=status)

    def reloading(self) -> None:
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> None:
        self.send(STOPPING=1, STATUS="stopping")

    async def watchdog(self, status: Callable[[], str]) -> None:
        """WATCHDOG=1 and a fresh STATUS, from the event loop: a stuck loop misses its pings."""
        while self.watchdog_interval is not None:
            self.send(WATCHDOG=1, STATUS=status())
            await asyncio.sleep(self.watchdog_interval)


def status_line(daemon: DaemonServices) -> str:
    """One line for `systemctl status`: queries, sources, rows delivered and waiting."""
    sinks = daemon.sinks.values()
    sent = sum(sink.stats.sent for sink in sinks)
    queued = sum(sink.stats.queued for sink in sinks)
    failing = sorted(sink.name for sink in sinks if sink.stats.queued and sink.stats.failed)
    active = sum(1 for status in daemon.rings.status.values() if status.active)
    text = f"{len(daemon.queries)} queries, {active} sources; {sent} rows delivered, {queued} waiting"
    return text + (f"; retrying {', '.join(failing)}" if failing else "")


def journal_stderr(environ: Mapping[str, str] = os.environ) -> bool:
    """True when stderr is connected to journald (systemd.exec(5): compare device and inode)."""
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return st.st_dev == int(device) and st.st_ino == int(inode)


class JournalFormatter(logging.Formatter):
    """``<6>message``: journald reads the priority and stamps the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITIES.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


def configure_logging(level: str = "info", environ: Mapping[str, str] = os.environ) -> None:
    """The daemon's stderr logging: journald's form under systemd, ``streamq: message`` elsewhere."""
    handler = logging.StreamHandler()
    if journal_stderr(environ):
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("streamq: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
