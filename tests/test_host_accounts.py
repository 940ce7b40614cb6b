"""host/accounts: passwd, group and shadow parsers on edge cases, and the homes of local users."""

from __future__ import annotations

import os
import subprocess

from streamq.host import accounts


def test_parse_passwd_edge_cases():
    data = (
        b"root:x:0:0:root:/root:/bin/bash\n"
        b"# a comment\n"
        b"+nisuser::::::\n"
        b"short:x:1\n"
        b"bad:x:notanumber:0::/:/bin/sh\n"
        b"nfsnobody:x:4294967294:4294967294:Anonymous:/var/lib/nfs:/sbin/nologin\n"
        b"caf\xe9:x:1001:1001:Caf\xc3\xa9:/home/caf\xe9:/bin/sh\n"
    )
    parsed = accounts.parse_passwd(data)
    assert [u.name for u in parsed] == ["root", "nfsnobody", "caf\\xe9"]
    assert parsed[1].uid == 4294967294
    assert parsed[2].gecos == "Café" and parsed[2].home == "/home/caf\\xe9"


def test_parse_shadow_statuses():
    data = (
        b"a:$6$salt$hash:19000:0:99999:7:::\n"
        b"b:$y$j9T$salt$hash:19001::::::\n"
        b"c:!$2b$10$abc:1:2:3:4:5:6:7\n"
        b"d:!!:19000:0:99999:7:::\n"
        b"e:*:19000:0:99999:7:::\n"
        b"f::19000:0:99999:7:::\n"
        b"g:plainDEScrypt:19000\n"
    )
    got = {s.name: s for s in accounts.parse_shadow(data)}
    assert [(got[n].password_status, got[n].hash_alg) for n in "abcdefg"] == [
        ("active", "6"),
        ("active", "y"),
        ("locked", None),  # the ! prefix breaks the "$id$" match, as in osquery
        ("not_set", None),
        ("locked", None),
        ("empty", None),
        ("active", None),
    ]
    assert got["c"][3:] == (1, 2, 3, 4, 5, 6, 7)
    assert got["b"].min is None and got["g"].max is None


def test_user_homes_match_getent():
    out = subprocess.run(["getent", "passwd"], capture_output=True, text=True, check=True).stdout
    expected = {(int(f[2]), f[5]) for f in (line.split(":") for line in out.splitlines()) if f[5].startswith("/")}
    local = set(accounts.user_homes())
    assert local <= expected and local
    assert accounts.user_homes([0]) == [(0, os.path.expanduser("~root"))]
