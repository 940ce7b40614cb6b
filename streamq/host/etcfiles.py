"""Parsers for /etc/hosts, /etc/services, /etc/protocols and /etc/resolv.conf.

Each takes the file's bytes and returns plain dict rows; a malformed line is
skipped, as glibc's own readers skip it.
"""

from __future__ import annotations

import ipaddress

from ..text import decode


def _content(line: bytes) -> tuple[list[bytes], str | None]:
    """Fields before '#', and the comment after it (None when there is none)."""
    body, hash_, comment = line.partition(b"#")
    return body.split(), (decode(comment.strip()) if hash_ else None)


def parse_hosts(data: bytes) -> list[dict]:
    rows = []
    for line in data.splitlines():
        fields, _ = _content(line)
        if len(fields) < 2:
            continue
        rows.append({"address": decode(fields[0]), "hostnames": " ".join(decode(f) for f in fields[1:])})
    return rows


def parse_services(data: bytes) -> list[dict]:
    rows = []
    for line in data.splitlines():
        fields, comment = _content(line)
        if len(fields) < 2:
            continue
        port, slash, proto = fields[1].partition(b"/")
        if not slash or not port.isdigit():
            continue
        rows.append(
            {
                "name": decode(fields[0]),
                "port": int(port),
                "protocol": decode(proto),
                "aliases": " ".join(decode(f) for f in fields[2:]) or None,
                "comment": comment or None,
            }
        )
    return rows


def parse_protocols(data: bytes) -> list[dict]:
    rows = []
    for line in data.splitlines():
        fields, comment = _content(line)
        if len(fields) < 2 or not fields[1].isdigit():
            continue
        rows.append(
            {
                "name": decode(fields[0]),
                "number": int(fields[1]),
                "alias": " ".join(decode(f) for f in fields[2:]) or None,
                "comment": comment or None,
            }
        )
    return rows


# glibc's resolv/res_init.c: the options it accepts and the _res.options bits they set.
RES_INIT, RES_RECURSE, RES_DEFNAMES, RES_DNSRCH = 0x1, 0x40, 0x80, 0x200
RES_DEFAULT = RES_INIT | RES_RECURSE | RES_DEFNAMES | RES_DNSRCH
_RES_OPTIONS = (  # longest names first: matching is by prefix, as in glibc
    (b"single-request-reopen", 0x00400000),
    (b"single-request", 0x00200000),
    (b"no_tld_query", 0x01000000),
    (b"no-tld-query", 0x01000000),
    (b"no-reload", 0x02000000),
    (b"trust-ad", 0x04000000),
    (b"no-aaaa", 0x08000000),
    (b"rotate", 0x00004000),
    (b"use-vc", 0x00000008),
    (b"edns0", 0x00100000),
)
MAXNS = 3  # glibc uses at most three nameservers


def parse_resolv_conf(data: bytes, hostname: str = "") -> list[dict]:
    """Nameservers, the search list and the sortlist, as glibc's res_init reads them.

    ``domain`` and ``search`` both replace the search list, the last one wins;
    without either, glibc searches the domain part of ``hostname``. Every row
    carries the resulting ``_res.options`` bit mask.
    """
    nameservers: list[str] = []
    search: list[str] = []
    sortlist: list[tuple[str, str | None]] = []
    options = RES_DEFAULT
    for line in data.splitlines():
        if line[:1] in (b"#", b";"):
            continue
        fields = line.split()
        if not fields:
            continue
        key, args = fields[0], fields[1:]
        if key == b"nameserver" and args and len(nameservers) < MAXNS:
            if _is_ip(args[0]):
                nameservers.append(decode(args[0]))
        elif key in (b"domain", b"search") and args:
            search = [decode(a) for a in (args[:1] if key == b"domain" else args)]
        elif key == b"sortlist":
            for item in args:
                addr, _, mask = item.partition(b"/")
                if _is_ip(addr):
                    sortlist.append((decode(addr), decode(mask) if mask else None))
        elif key == b"options":
            for opt in args:
                for name, bit in _RES_OPTIONS:
                    if opt.startswith(name):
                        options |= bit
                        break
    if not search and "." in hostname:
        search = [hostname.split(".", 1)[1]]
    rows = []
    for i, ns in enumerate(nameservers):
        rows.append({"id": i, "type": "nameserver", "address": ns, "netmask": "128" if ":" in ns else "32"})
    for i, domain in enumerate(search):
        rows.append({"id": i, "type": "search", "address": domain, "netmask": None})
    for i, (addr, mask) in enumerate(sortlist):
        rows.append({"id": i, "type": "sortlist", "address": addr, "netmask": mask})
    for row in rows:
        row["options"] = options
    return rows


def _is_ip(text: bytes) -> bool:
    try:
        ipaddress.ip_address(text.decode().split("%", 1)[0])
    except ValueError:
        return False
    return True
