"""host/ipc: /proc/keys parsed from captured lines."""

from __future__ import annotations

from streamq.host import ipc


def test_parse_proc_keys_keeps_spaces_in_descriptions():
    data = b"0b2d4ab3 I--Q---     2 perm 3f030000  1000  1000 user      my key: 6\n"
    (key,) = ipc.parse_proc_keys(data)
    assert key.description == "my key: 6" and key.usage == 2 and key.uid == 1000
