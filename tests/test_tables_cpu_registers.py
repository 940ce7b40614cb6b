"""The msr table on this host (the reader is tested on files in test_host_msr.py)."""

from __future__ import annotations

import os

import pytest


def test_live_msr(conn):
    if not os.path.exists("/dev/cpu/0/msr"):
        assert conn.query("SELECT * FROM msr") == []
        pytest.skip("no msr driver on this kernel: the fixture tests cover the reading")
    rows = conn.query("SELECT * FROM msr")
    assert len(rows) == len([n for n in os.listdir("/dev/cpu") if n.isdigit()]) or os.geteuid() != 0
