"""host/etcfiles: the hosts, services, protocols and resolv.conf parsers on bytes the test writes."""

from __future__ import annotations

from streamq.host import etcfiles


def test_etc_parsers_on_written_bytes():
    hosts = b"# comment\n10.1.2.3  web web.local  # front\n\n::1 ip6-localhost\nbroken\n"
    assert etcfiles.parse_hosts(hosts) == [
        {"address": "10.1.2.3", "hostnames": "web web.local"},
        {"address": "::1", "hostnames": "ip6-localhost"},
    ]
    services = b"ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol\ndiscard 9/udp sink null\nbad x/tcp\n"
    assert etcfiles.parse_services(services) == [
        {"name": "ssh", "port": 22, "protocol": "tcp", "aliases": None, "comment": "SSH Remote Login Protocol"},
        {"name": "discard", "port": 9, "protocol": "udp", "aliases": "sink null", "comment": None},
    ]
    resolv = b"nameserver 192.0.2.53\nnameserver fd00::53\noptions rotate edns0 ndots:2\nsearch a.example b.example\n"
    rows = etcfiles.parse_resolv_conf(resolv)
    assert [(r["type"], r["id"], r["address"], r["netmask"]) for r in rows] == [
        ("nameserver", 0, "192.0.2.53", "32"),
        ("nameserver", 1, "fd00::53", "128"),
        ("search", 0, "a.example", None),
        ("search", 1, "b.example", None),
    ]
    assert {r["options"] for r in rows} == {etcfiles.RES_DEFAULT | 0x4000 | 0x100000}
