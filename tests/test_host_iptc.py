"""host/iptc: the x_tables entry parser on a filter table captured from a kernel."""

from __future__ import annotations

import base64
import zlib

from streamq.host import iptc

# A filter table captured from the kernel (IPT_SO_GET_ENTRIES) after:
#   iptables-legacy -N MYCHAIN; -P FORWARD DROP
#   -A INPUT -p tcp --dport 22 -s 10.0.0.0/8 -i eth0 -j ACCEPT
#   -A INPUT -p udp --sport 53:60 -j MYCHAIN
#   -A MYCHAIN -o lo+ -j LOG; -A MYCHAIN -j RETURN; -A MYCHAIN -j DROP
_FILTER_BLOB = (
    "eNrjYoCA/1A6tSTDgAEP+A8CeOTZoPQChhMMTFjkDRhKkgsY8NsgxiAG52kw4Af/8DuHbCBI0B+lKfj8YcpgA/YLsf7gYGGgKShgmIHVHwMVvsju"
    "YiHDXf/p4C6OQRleG7CKOzC4BgX5B+HU5xvp7OHo6Ue2vTn52gTiA7d7mbC618ffHY95NM4OVM8nv+mQHhkGaT5hGJThRV4+wS/LwAAAUOtEAg=="
)


_FILTER_INFO = iptc.TableInfo(14, (4294967295, 0, 552, 704, 4294967295), (4294967295, 400, 552, 704, 4294967295), 1840)


def test_iptables_parser_on_captured_table():
    chains, rules = iptc.parse_entries(zlib.decompress(base64.b64decode(_FILTER_BLOB)), _FILTER_INFO)
    assert [(c.name, c.policy) for c in chains] == [
        ("INPUT", "ACCEPT"),
        ("FORWARD", "DROP"),
        ("OUTPUT", "ACCEPT"),
        ("MYCHAIN", None),
    ]
    got = [
        (r.chain, r.target, r.protocol, r.src_ip, r.src_mask, r.iniface, r.outiface, r.src_port, r.dst_port)
        for r in rules
    ]
    assert got == [
        ("INPUT", "ACCEPT", 6, "10.0.0.0", "255.0.0.0", "eth0", "all", "0:65535", "22:22"),
        ("INPUT", "MYCHAIN", 17, "0.0.0.0", "0.0.0.0", "all", "all", "53:60", "0:65535"),
        ("MYCHAIN", "LOG", 0, "0.0.0.0", "0.0.0.0", "all", "lo+", None, None),
        ("MYCHAIN", "RETURN", 0, "0.0.0.0", "0.0.0.0", "all", "all", None, None),
        ("MYCHAIN", "DROP", 0, "0.0.0.0", "0.0.0.0", "all", "all", None, None),
    ]
    assert rules[0].iniface_mask == "FFFFFFFFFF" and rules[2].outiface_mask == "FFFF"
    assert [r.has_matches for r in rules] == [True, True, False, False, False]
