"""Netlink for sources: opening a socket (buffer size, errors) and the one receive loop.

The network, hardware and process sources all read datagrams through
:func:`receive`: ENOBUFS counted as an overflow and answered with a resync,
a decoding failure counted without stopping the source.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

from ..ring import SourceStatus
from .base import SourceUnavailable

_MAX_DATAGRAM = 65536

SO_RCVBUFFORCE = 33  # root may raise the receive buffer past net.core.rmem_max


def open_netlink(protocol: int, groups: int, *, label: str, what: str, rcvbuf: int, raw: bool = False) -> socket.socket:
    """A non-blocking netlink socket bound to ``groups``; SourceUnavailable saying ``what`` failed.

    A large receive buffer is what stands between a burst of kernel events and
    ENOBUFS (events lost), so ask for ``rcvbuf`` bytes with the root-only option first.
    """
    kind = socket.SOCK_RAW if raw else socket.SOCK_DGRAM
    try:
        sock = socket.socket(socket.AF_NETLINK, kind | socket.SOCK_NONBLOCK, protocol)
    except OSError as err:
        raise SourceUnavailable(f"{label}: cannot open the netlink socket: {err.strerror}") from err
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((0, groups))
    except OSError as err:
        sock.close()
        raise SourceUnavailable(f"{label}: cannot {what}: {err.strerror}") from err
    return sock


def receive(
    sock: socket.socket,
    handle: Callable[[bytes, int], None],
    status: SourceStatus,
    *,
    resync: Callable[[], None] | None = None,
    limit: int | None = None,
) -> int:
    """Read the datagrams queued on the non-blocking ``sock`` (at most ``limit``); return how many.

    ``handle(data, sender)`` gets each one (sender 0 is the kernel); an exception it
    raises is counted in ``status`` and the loop goes on: a decoding bug must not stop
    a source. ENOBUFS means the kernel dropped messages: it is counted as an overflow and
    ``resync`` (a dump or rescan that finds what was missed) is called. Other socket
    errors propagate.
    """
    count = 0
    while limit is None or count < limit:
        try:
            data, (sender, _groups) = sock.recvfrom(_MAX_DATAGRAM)
        except BlockingIOError:
            break
        except OSError as err:
            if err.errno != errno.ENOBUFS:
                raise
            status.overflows += 1
            if resync is not None:
                try:
                    resync()
                except Exception as resync_err:
                    status.error(f"resync after overflow failed: {resync_err}")
            continue
        count += 1
        try:
            handle(data, sender)
        except Exception as err:
            status.error(f"{type(err).__name__}: {err}")
    return count


async def serve_socket(
    sock: socket.socket,
    handle: Callable[[bytes, int], None],
    status: SourceStatus,
    *,
    resync: Callable[[], None] | None = None,
) -> None:
    """:func:`receive` whenever ``sock`` is readable, from the event loop, until the task is
    cancelled or the socket fails (then raised, and the supervisor restarts the source).
    The socket is closed either way."""
    loop = asyncio.get_running_loop()
    failed: asyncio.Future = loop.create_future()

    def readable() -> None:
        try:
            receive(sock, handle, status, resync=resync)
        except OSError as err:
            if not failed.done():
                failed.set_exception(err)

    loop.add_reader(sock.fileno(), readable)
    try:
        await failed
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
