"""iptables rules read from the kernel: IPT_SO_GET_INFO / IPT_SO_GET_ENTRIES and struct.

This is what libiptc does under `iptables-save`, without libiptc or the
binary. :func:`parse_entries` is a pure function over the entry blob, so it is
tested on constructed bytes too.

Layout (linux/netfilter_ipv4/ip_tables.h, x86-64 and other LP64 ABIs):
``struct ipt_entry`` is 112 bytes (ipt_ip 84, nfcache, target_offset,
next_offset, comefrom, then u64 packet and byte counters); matches follow it,
each ``xt_entry_match`` with a 32-byte header; the target sits at
target_offset with the same header. A standard target's data is one int
verdict: negative for ACCEPT/DROP/QUEUE/RETURN, else the offset of the rule to
jump to. A user chain begins with an ERROR target naming it and ends with a
RETURN rule that iptables never shows.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from typing import NamedTuple

IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES = 64, 65
HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
_GETINFO = struct.Struct("=32sI5I5III")
_GET_ENTRIES_HEADER = 40  # name[32], size, then 8-aligned entries
_ENTRY = struct.Struct("=4s4s4s4s16s16s16s16sHBBIHHIQQ")
_MATCH_HEADER = struct.Struct("=H29sB")
_VERDICTS = {-1: "DROP", -2: "ACCEPT", -4: "QUEUE", -5: "RETURN"}


class TableInfo(NamedTuple):
    valid_hooks: int
    hook_entry: tuple[int, ...]
    underflow: tuple[int, ...]
    size: int


class Rule(NamedTuple):
    chain: str
    target: str | None
    protocol: int
    src_ip: str
    src_mask: str
    dst_ip: str
    dst_mask: str
    iniface: str
    iniface_mask: str | None
    outiface: str
    outiface_mask: str | None
    src_port: str | None
    dst_port: str | None
    has_matches: bool
    packets: int
    bytes: int


class Chain(NamedTuple):
    name: str
    policy: str | None  # built-in chains only
    packets: int | None
    bytes: int | None


def read_table(name: str) -> tuple[list[Chain], list[Rule]]:
    """Chains and rules of one IPv4 table; OSError when the kernel refuses (no rights, no table)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        raw = _getsockopt(libc, sock, IPT_SO_GET_INFO, name.encode().ljust(_GETINFO.size, b"\0"))
        _, valid, *rest = _GETINFO.unpack(raw)
        info = TableInfo(valid, tuple(rest[0:5]), tuple(rest[5:10]), rest[11])
        request = struct.pack("=32sI4x", name.encode(), info.size) + bytes(info.size)
        blob = _getsockopt(libc, sock, IPT_SO_GET_ENTRIES, request)
    return parse_entries(blob[_GET_ENTRIES_HEADER:], info)


def _getsockopt(libc, sock: socket.socket, option: int, request: bytes) -> bytes:
    # Python's socket.getsockopt cannot pass an input buffer; these options need one.
    buf = ctypes.create_string_buffer(request, len(request))
    size = ctypes.c_uint32(len(request))
    if libc.getsockopt(sock.fileno(), socket.SOL_IP, option, buf, ctypes.byref(size)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"getsockopt({option}) failed")
    return buf.raw[: size.value]


def parse_entries(blob: bytes, info: TableInfo) -> tuple[list[Chain], list[Rule]]:
    entries = []
    off = 0
    while off + _ENTRY.size <= len(blob):
        fields = _ENTRY.unpack_from(blob, off)
        next_offset = fields[13]
        if next_offset < _ENTRY.size:
            break  # corrupt: never loop forever
        entries.append((off, fields))
        off += next_offset

    hooks = {info.hook_entry[h]: HOOKS[h] for h in range(5) if info.valid_hooks & (1 << h)}
    policies = {info.underflow[h]: HOOKS[h] for h in range(5) if info.valid_hooks & (1 << h)}
    heads = {}  # offset of a user chain's first rule -> chain name
    for i, (off, fields) in enumerate(entries):
        name, data = _target(blob, off, fields)
        if name == "ERROR" and i + 1 < len(entries):
            label = data.split(b"\0", 1)[0].decode(errors="replace")
            if label != "ERROR":
                heads[entries[i + 1][0]] = label

    chains: list[Chain] = []
    rules: list[Rule] = []
    chain = None
    for i, (off, fields) in enumerate(entries):
        if off in hooks:
            chain = hooks[off]
        elif off in heads:
            chain = heads[off]
            chains.append(Chain(chain, None, None, None))
        name, data = _target(blob, off, fields)
        if name == "ERROR" or chain is None:
            continue
        target = _target_name(name, data, heads, off + fields[13])
        if off in policies:
            chains.append(Chain(policies[off], target, fields[15], fields[16]))
            continue
        if chain not in HOOKS and target == "RETURN" and fields[12] == _ENTRY.size and _ends_chain(entries, i, blob):
            continue  # the implicit end of a user chain
        rules.append(_rule(blob, off, fields, chain, target))
    order = {c.name: n for n, c in enumerate(chains)}
    chains.sort(key=lambda c: (c.name not in HOOKS, HOOKS.index(c.name) if c.name in HOOKS else order[c.name]))
    return chains, rules


def _ends_chain(entries, i: int, blob: bytes) -> bool:
    # A user chain's implicit RETURN is followed by the next chain's ERROR head (or the table's end).
    if i + 1 >= len(entries):
        return True
    off, fields = entries[i + 1]
    return _target(blob, off, fields)[0] == "ERROR"


def _target(blob: bytes, off: int, fields: tuple) -> tuple[str, bytes]:
    t = off + fields[12]
    size, name, _rev = _MATCH_HEADER.unpack_from(blob, t)
    return name.split(b"\0", 1)[0].decode(errors="replace"), blob[t + 32 : t + max(size, 32)]


def _target_name(name: str, data: bytes, heads: dict[int, str], next_off: int) -> str | None:
    if name:
        return name  # an extension target: LOG, MASQUERADE, REJECT...
    verdict = struct.unpack_from("=i", data)[0] if len(data) >= 4 else 0
    if verdict < 0:
        return _VERDICTS.get(verdict)
    if verdict == next_off:
        return None  # falls through: iptables prints no target
    return heads.get(verdict)


def _rule(blob: bytes, off: int, fields: tuple, chain: str, target: str | None) -> Rule:
    src, dst, smsk, dmsk, iniface, outiface, inmask, outmask, proto = fields[:9]
    src_port = dst_port = None
    m = off + _ENTRY.size
    while m + 32 <= off + fields[12]:
        size, mname, _rev = _MATCH_HEADER.unpack_from(blob, m)
        if size < 32:
            break
        if mname.split(b"\0", 1)[0] in (b"tcp", b"udp") and size >= 40:
            spts = struct.unpack_from("=HH", blob, m + 32)
            dpts = struct.unpack_from("=HH", blob, m + 36)
            src_port, dst_port = f"{spts[0]}:{spts[1]}", f"{dpts[0]}:{dpts[1]}"
        m += size
    return Rule(
        chain=chain,
        target=target,
        protocol=proto,
        src_ip=socket.inet_ntoa(src),
        src_mask=socket.inet_ntoa(smsk),
        dst_ip=socket.inet_ntoa(dst),
        dst_mask=socket.inet_ntoa(dmsk),
        iniface=_iface(iniface) or "all",
        iniface_mask=_iface_mask(inmask),
        outiface=_iface(outiface) or "all",
        outiface_mask=_iface_mask(outmask),
        src_port=src_port,
        dst_port=dst_port,
        has_matches=fields[12] > _ENTRY.size,
        packets=fields[15],
        bytes=fields[16],
    )


def _iface(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _iface_mask(raw: bytes) -> str | None:
    # osquery's form: the mask's bytes in hex up to the first zero byte.
    mask = raw.split(b"\0", 1)[0]
    return mask.hex().upper() or None
