"""The readers behind selinux_settings and apparmor_profiles, on file trees laid out as
selinuxfs and securityfs are (the live tables: test_tables_mac_policy.py)."""

from __future__ import annotations

from streamq.host import macpolicy


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_selinux_settings_from_a_selinuxfs_tree(tmp_path):
    write(tmp_path / "enforce", "1")
    write(tmp_path / "policyvers", "33")
    write(tmp_path / "mls", "1")
    write(tmp_path / "booleans" / "httpd_can_network_connect", "1 1")
    write(tmp_path / "booleans" / "ssh_sysadm_login", "0 0")
    write(tmp_path / "booleans" / "pending_change", "0 1")
    write(tmp_path / "policy_capabilities" / "network_peer_controls", "1")
    write(tmp_path / "initial_contexts" / "kernel", "system_u:system_r:kernel_t:s0\0")
    write(tmp_path / "class" / "file" / "index", "7")
    write(tmp_path / "class" / "file" / "perms" / "read", "2")
    write(tmp_path / "class" / "file" / "perms" / "write", "3")
    rows = [(r["scope"], r["key"], r["value"]) for r in macpolicy.selinux_rows(str(tmp_path))]
    assert rows[:6] == [
        ("", "checkreqprot", None),
        ("", "deny_unknown", None),
        ("", "enforce", "1"),
        ("", "mls", "1"),
        ("", "policyvers", "33"),
        ("", "reject_unknown", None),
    ]
    assert rows[6:] == [
        ("booleans", "httpd_can_network_connect", "on"),
        ("booleans", "pending_change", "0 1"),
        ("booleans", "ssh_sysadm_login", "off"),
        ("policy_capabilities", "network_peer_controls", "1"),
        ("initial_contexts", "kernel", "system_u:system_r:kernel_t:s0"),
        ("class", "file", "read"),
        ("class", "file", "write"),
    ]


def test_selinuxfs_is_found_in_mounts():
    mounts = b"proc /proc proc rw 0 0\nselinuxfs /sys/fs/selinux selinuxfs rw,relatime 0 0\n"
    assert macpolicy.selinuxfs_mount(mounts) == "/sys/fs/selinux"
    assert macpolicy.selinuxfs_mount(b"proc /proc proc rw 0 0\n") is None


def test_apparmor_profiles_from_a_securityfs_tree(tmp_path):
    profile = tmp_path / "usr.sbin.cupsd.2"
    write(profile / "name", "/usr/sbin/cupsd\n")
    write(profile / "mode", "enforce\n")
    write(profile / "attach", "/usr/sbin/cupsd\n")
    write(profile / "sha256", "ab" * 32 + "\n")
    assert list(macpolicy.apparmor_rows(str(tmp_path))) == [
        {
            "path": str(profile),
            "name": "/usr/sbin/cupsd",
            "attach": "/usr/sbin/cupsd",
            "mode": "enforce",
            "sha1": None,
            "sha256": "ab" * 32,
        }
    ]
