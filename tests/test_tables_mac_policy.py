"""selinux_settings and apparmor_profiles on this host. This kernel has neither module loaded,
so the live tables are checked to be empty (the readers: test_host_macpolicy.py)."""

from __future__ import annotations

import os

import pytest

from streamq.host import macpolicy


def test_live_tables_match_the_kernel(conn):
    if macpolicy.selinuxfs_mount(open("/proc/self/mounts", "rb").read()) is None:  # noqa: SIM115
        assert conn.query("SELECT * FROM selinux_settings") == []
    if not os.path.isdir(macpolicy.APPARMOR_PROFILES):
        assert conn.query("SELECT * FROM apparmor_profiles") == []
    else:
        pytest.skip("AppArmor is loaded here; its profiles are checked by the tree test")
