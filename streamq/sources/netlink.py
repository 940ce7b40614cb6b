"""Opening a netlink socket for a source: one place for the buffer size and the errors."""

from __future__ import annotations

import asyncio
import socket

from .base import SourceUnavailable

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


async def serve_socket(sock: socket.socket, drain) -> None:
    """Call ``drain(sock, failed)`` whenever ``sock`` is readable, until ``failed`` gets an
    exception (then raised, and the supervisor restarts the source) or the task is cancelled.
    The socket is closed either way."""
    loop = asyncio.get_running_loop()
    failed: asyncio.Future = loop.create_future()
    loop.add_reader(sock.fileno(), drain, sock, failed)
    try:
        await failed
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
