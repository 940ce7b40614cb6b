"""host/sockdiag: /proc/net address decoding against inet_pton, and the tcp and unix parsers on written lines."""

from __future__ import annotations

import socket

from streamq.host import sockdiag as netsock


def test_decode_address_matches_inet_pton():
    # /proc/net prints the in-memory u32 words in hex: reversed bytes per 4-byte group.
    assert netsock.decode_address(b"0100007F") == "127.0.0.1"
    assert netsock.decode_address(b"00000000") == "0.0.0.0"
    addr = "fe80::1:2:3:4"
    packed = socket.inet_pton(socket.AF_INET6, addr)
    words = b"".join(packed[i : i + 4][::-1] for i in range(0, 16, 4))
    assert netsock.decode_address(words.hex().upper().encode()) == addr
    assert netsock.decode_address(b"zz") is None


def test_parse_inet_and_unix_on_constructed_lines():
    tcp = (
        b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        b"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0\n"
        b"   1: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 5678 1 0\n"
        b"   2: garbage\n"
    )
    rows = netsock.parse_inet(tcp, 2, 6)
    assert [(r.inode, r.local_port, r.state) for r in rows] == [(1234, 8080, "LISTEN"), (5678, 40960, "ESTABLISHED")]
    assert rows[1].remote_address == "127.0.0.1" and rows[1].remote_port == 8080
    assert [r.inode for r in netsock.parse_inet(tcp, 2, 6, listening=True)] == [1234]
    unix = (
        b"Num       RefCount Protocol Flags    Type St Inode Path\n"
        b"0000000064529bb4: 00000002 00000000 00010000 0001 01  5205 /run/a b.sock\n"
        b"00000000de2f1d46: 00000003 00000000 00000000 0001 03  6886\n"
        b"00000000de2f1d47: 00000002 00000000 00000000 0002 01  6887 @abstract\n"
    )
    socks = netsock.parse_unix(unix)
    assert [(s.inode, s.state, s.path) for s in socks] == [
        (5205, "LISTEN", "/run/a b.sock"),
        (6886, "CONNECTED", None),
        (6887, "UNCONNECTED", "@abstract"),
    ]
    assert [s.inode for s in netsock.parse_unix(unix, listening=True)] == [5205, 6887]
