"""osquery's SQL functions, so pack queries that call them run unchanged.

SQLite already has concat, concat_ws, sqrt, log10, power and pi. Where osquery
gives a built-in name another meaning we follow osquery: ``log(x)`` is the
natural logarithm and ``ceil``/``floor`` return integers.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import apsw


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def regex_match(value: Any, pattern: Any, index: Any) -> str | None:
    """Group ``index`` of the first match of ``pattern`` in ``value`` (0: the whole match)."""
    if value is None or pattern is None or index is None:
        return None
    try:
        m = _regex(str(pattern)).search(str(value))
        return m.group(int(index)) if m else None
    except (re.error, IndexError) as err:
        raise ValueError(f"regex_match: {err}") from err


def regex_split(value: Any, pattern: Any, index: Any) -> str | None:
    """Token ``index`` of ``value`` split by the regular expression ``pattern``, empty tokens dropped."""
    if value is None or pattern is None or index is None:
        return None
    try:
        tokens = [t for t in _regex(str(pattern)).split(str(value)) if t]
    except re.error as err:
        raise ValueError(f"regex_split: {err}") from err
    i = int(index)
    return tokens[i] if 0 <= i < len(tokens) else None


def split(value: Any, tokens: Any, index: Any) -> str | None:
    """Token ``index`` of ``value`` split on any character of ``tokens``, empty tokens dropped."""
    if value is None or tokens is None or index is None:
        return None
    seps = str(tokens)
    parts = re.split("[" + re.escape(seps) + "]", str(value)) if seps else [str(value)]
    parts = [p for p in parts if p]
    i = int(index)
    return parts[i] if 0 <= i < len(parts) else None


def inet_aton(value: Any) -> int | None:
    """An IPv4 dotted quad as its 32-bit integer."""
    import socket
    import struct

    try:
        return struct.unpack("!I", socket.inet_aton(str(value)))[0] if value is not None else None
    except OSError:
        return None


def in_cidr_block(block: Any, address: Any) -> int | None:
    """1 when ``address`` lies in the CIDR ``block``, else 0."""
    import ipaddress

    if block is None or address is None:
        return None
    try:
        net = ipaddress.ip_network(str(block), strict=False)
        addr = ipaddress.ip_address(str(address))
    except ValueError as err:
        raise ValueError(f"in_cidr_block: {err}") from err
    return int(addr.version == net.version and addr in net)


def _dpkg_order(c: str) -> int:
    # dpkg: '~' sorts before everything, even the end of the string; letters before non-letters.
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _compare_fragment(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i]) if i < len(a) else 0
            bc = _dpkg_order(b[j]) if j < len(b) else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = (a[i] > b[j]) - (a[i] < b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_epoch(v: str) -> tuple[int, str, str]:
    epoch, colon, rest = v.partition(":")
    if not colon or not epoch.isdigit():
        epoch, rest = "0", v
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return int(epoch), upstream, revision


def version_compare(a: Any, b: Any, kind: Any = None) -> int | None:
    """-1, 0 or 1 as version ``a`` sorts before, equal to or after ``b`` (dpkg rules)."""
    if a is None or b is None:
        return None
    ea, ua, ra = _split_epoch(str(a))
    eb, ub, rb = _split_epoch(str(b))
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_fragment(ua, ub) or _compare_fragment(ra, rb)


def community_id_v1(saddr: Any, daddr: Any, sport: Any, dport: Any, proto: Any, seed: Any = 0) -> str | None:
    """The Community ID (v1) of a flow, as Zeek, Suricata and osquery compute it."""
    import base64
    import hashlib
    import ipaddress
    import struct

    try:
        src = ipaddress.ip_address(str(saddr)).packed
        dst = ipaddress.ip_address(str(daddr)).packed
        sp, dp, pr, sd = int(sport), int(dport), int(proto), int(seed or 0)
    except (TypeError, ValueError):
        return None
    # Order the endpoints so both directions of a flow get the same id.
    if (src, sp) > (dst, dp):
        src, dst, sp, dp = dst, src, dp, sp
    data = struct.pack("!H", sd) + src + dst + struct.pack("!BB", pr, 0) + struct.pack("!HH", sp, dp)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _digest(name: str):
    def fn(value: Any) -> str | None:
        import hashlib

        return None if value is None else hashlib.new(name, _as_bytes(value)).hexdigest()

    return fn


def to_base64(value: Any) -> str | None:
    import base64

    return None if value is None else base64.b64encode(_as_bytes(value)).decode()


def from_base64(value: Any) -> str | None:
    import base64
    import binascii

    if value is None:
        return None
    try:
        return base64.b64decode(_as_bytes(value), validate=False).decode("utf-8", "backslashreplace")
    except binascii.Error:
        return None


def conditional_to_base64(value: Any) -> str | None:
    """Base64 only when ``value`` is not plain printable ASCII (osquery's rule)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else None
    if text is not None and text.isascii() and text.isprintable():
        return text
    return to_base64(value)


def _natural_log(*args: Any) -> float | None:
    if any(a is None for a in args):
        return None
    if len(args) == 1:
        x = float(args[0])
        return math.log(x) if x > 0 else None
    base, x = float(args[0]), float(args[1])
    return math.log(x, base) if x > 0 and base > 0 and base != 1 else None


def _int_round(fn):
    def wrapped(value: Any) -> int | None:
        if value is None:
            return None
        try:
            return int(fn(float(value)))
        except (TypeError, ValueError, OverflowError):
            return None

    return wrapped


FUNCTIONS: dict[str, Any] = {
    "regex_match": regex_match,
    "regex_split": regex_split,
    "split": split,
    "inet_aton": inet_aton,
    "in_cidr_block": in_cidr_block,
    "version_compare": version_compare,
    "community_id_v1": community_id_v1,
    "md5": _digest("md5"),
    "sha1": _digest("sha1"),
    "sha256": _digest("sha256"),
    "to_base64": to_base64,
    "from_base64": from_base64,
    "conditional_to_base64": conditional_to_base64,
    "log": _natural_log,
    "ceil": _int_round(math.ceil),
    "floor": _int_round(math.floor),
}


def register(connection: apsw.Connection) -> None:
    for name, fn in FUNCTIONS.items():
        connection.create_scalar_function(name, fn, deterministic=True)
