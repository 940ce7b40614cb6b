"""socket_events from sock_diag polling, against sockets this test opens and closes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket

import pytest
from source_harness import rows as ring_rows

from conftest import follow_while
from conftest import until as _until
from streamq.ring import Rings
from streamq.sources.socket import LISTEN, Sock, SockDiag, SocketSource, classify, diff

INTERVAL = 0.05

until = functools.partial(_until, timeout=3.0, interval=0.01)


@contextlib.asynccontextmanager
async def running_source(interval: float = INTERVAL):
    rings = Rings()
    source = SocketSource("socket_events", {"interval": interval}, rings)
    task = asyncio.create_task(source.run())
    try:
        await until(lambda: source.polls >= 1, timeout=5)  # the baseline is taken: changes from now on are rows
        yield source
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _one(source: SocketSource, **match) -> dict:
    rows = await until(lambda: ring_rows(source, **match))
    assert rows, f"no socket_events row matching {match}; got {ring_rows(source)[-10:]}"
    assert len(rows) == 1, rows
    return rows[0]


def _inode(sock: socket.socket) -> str:
    return str(os.fstat(sock.fileno()).st_ino)


async def test_tcp_listen_connect_accept_close():
    async with running_source() as source:
        server = socket.socket()
        server.bind(("0.0.0.0", 0))
        server.listen()
        port = server.getsockname()[1]
        row = await _one(source, action="listen", socket=_inode(server))
        assert row["pid"] == os.getpid()
        assert row["fd"] == str(server.fileno())
        assert row["path"] == os.path.realpath(f"/proc/{os.getpid()}/exe")
        assert (row["family"], row["protocol"], row["local_port"], row["local_address"]) == (2, 6, port, "0.0.0.0")
        assert (row["status"], row["uid"], row["success"]) == ("LISTEN", os.getuid(), 1)
        assert isinstance(row["uptime"], int) and row["uptime"] > 0

        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        client_port = client.getsockname()[1]
        connect = await _one(source, action="connect", socket=_inode(client))
        assert (connect["local_port"], connect["remote_port"], connect["remote_address"]) == (
            client_port,
            port,
            "127.0.0.1",
        )
        assert connect["status"] == "ESTABLISHED" and connect["fd"] == str(client.fileno())
        accept = await _one(source, action="accept", socket=_inode(accepted))
        assert (accept["local_port"], accept["remote_port"], accept["pid"]) == (port, client_port, os.getpid())

        inodes = [_inode(s) for s in (client, accepted, server)]
        for s in (client, accepted, server):
            s.close()
        for inode in inodes:
            closed = await _one(source, action="close", socket=inode)
            assert closed["pid"] == os.getpid() and closed["status"] == "CLOSE"


async def test_udp_bind_is_listen_and_connect():
    async with running_source() as source:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
            udp.bind(("::", 0))
            row = await _one(source, action="listen", socket=_inode(udp))
            assert (row["family"], row["protocol"], row["local_port"]) == (10, 17, udp.getsockname()[1])
            assert row["pid"] == os.getpid() and row["status"] is None
            udp.connect(("::1", 9))  # a connected UDP socket: the same inode, now a connect
            row = await _one(source, action="connect", socket=_inode(udp))
            assert (row["remote_address"], row["remote_port"]) == ("::1", 9)
            inode = _inode(udp)
        await _one(source, action="close", socket=inode)


async def test_unix_listener(tmp_path):
    path = str(tmp_path / "sq.sock")
    async with running_source() as source:
        with socket.socket(socket.AF_UNIX) as unix:
            unix.bind(path)
            unix.listen()
            row = await _one(source, action="listen", socket=_inode(unix))
        assert (row["family"], row["path"], row["pid"], row["protocol"]) == (1, path, os.getpid(), None)


async def test_unreported_sockets_make_no_rows():
    """An unbound UDP socket and a bound-but-not-listening TCP socket are not events, nor is their close."""
    async with running_source() as source:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        marker = socket.socket()  # a listener after them: once it shows, a poll has seen the others
        marker.bind(("127.0.0.1", 0))
        marker.listen()
        await _one(source, action="listen", socket=_inode(marker))
        inodes = {_inode(udp), _inode(tcp)}
        udp.close()
        tcp.close()
        marker_inode = _inode(marker)
        marker.close()
        await _one(source, action="close", socket=marker_inode)
        assert not [r for _, _, r in source.ring.since(0) if r["socket"] in inodes]


def test_sock_diag_snapshot_matches_ss():
    """Every listening TCP port ss reports is in a sock_diag snapshot with the same inode."""
    import shutil
    import subprocess

    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        out = subprocess.run(["ss", "-Htlne"], capture_output=True, text=True, check=True).stdout
        diag = SockDiag()
        try:
            snap = diag.snapshot()
        finally:
            diag.close()
        ours = snap[os.fstat(server.fileno()).st_ino]
        assert (ours.state, ours.lport, ours.uid) == (LISTEN, server.getsockname()[1], os.getuid())
    expected = set()
    for line in out.splitlines():
        fields = line.split()
        inode = next((f[4:] for f in fields if f.startswith("ino:")), None)
        if inode and inode != "0":
            expected.add((int(inode), int(fields[3].rsplit(":", 1)[1])))
    got = {(inode, s.lport) for inode, s in snap.items() if s.state == LISTEN and s.protocol == 6}
    assert expected and expected <= got


def test_classify_rules():
    tcp = Sock(2, 6, LISTEN, 80, 0, 0, bytes(32))
    assert classify(tcp, None, set()) == "listen"
    assert classify(tcp._replace(state=1, lport=80), None, {80}) == "accept"
    assert classify(tcp._replace(state=1, lport=40000), None, {80}) == "connect"
    assert classify(tcp._replace(state=2, lport=80), None, {80}) == "connect"  # SYN_SENT is never an accept
    assert classify(tcp._replace(state=1), tcp._replace(state=2), set()) is None  # SYN_SENT -> ESTABLISHED
    assert classify(tcp._replace(state=7), None, set()) is None  # bound, not listening
    udp = Sock(2, 17, 7, 53, 0, 0, bytes(32))
    assert classify(udp, None, set()) == "listen"
    assert classify(udp._replace(lport=0), None, set()) is None
    assert classify(udp._replace(state=1), udp, set()) == "connect"
    reported: set[int] = set()
    rows = list(diff({}, {5: tcp, 6: udp._replace(lport=0)}, reported))
    assert [(a, i) for a, i, _ in rows] == [("listen", 5)] and reported == {5}
    rows = list(diff({5: tcp, 6: udp._replace(lport=0)}, {}, reported))
    assert [(a, i) for a, i, _ in rows] == [("close", 5)] and reported == set()


def test_cli_follow_listen(tmp_path):
    cfg = tmp_path / "streamq.toml"
    cfg.write_text('[sources.socket]\ninterval = "50ms"\n')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def trigger(done):
        while not done.is_set():  # the CLI needs a moment to take its baseline: listen until it reports
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                s.listen()
                done.wait(0.3)

    sql = f"SELECT action, pid, local_port, protocol FROM socket_events WHERE action = 'listen' AND local_port = {port}"
    rows = follow_while(trigger, cfg, sql, count=1, timeout=10)
    assert rows == [{"action": "listen", "pid": os.getpid(), "local_port": port, "protocol": 6}]
