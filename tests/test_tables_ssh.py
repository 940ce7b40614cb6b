"""user_ssh_keys on keys ssh-keygen and openssl write; ssh_configs against `ssh -G`."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from streamq.host import sshfiles
from streamq.tables import ssh


def sh(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture
def home(tmp_path):
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen is not installed (Debian package openssh-client)")
    (tmp_path / ".ssh").mkdir(mode=0o700)
    return tmp_path


def _keygen(path, *args: str) -> None:
    sh("ssh-keygen", "-q", "-f", str(path), "-C", "test", *args)


def test_user_ssh_keys_match_ssh_keygen(home):
    keys = home / ".ssh"
    _keygen(keys / "id_ed25519", "-t", "ed25519", "-N", "")
    _keygen(keys / "id_rsa", "-t", "rsa", "-b", "3072", "-N", "")
    _keygen(keys / "id_ecdsa", "-t", "ecdsa", "-b", "384", "-N", "")
    _keygen(keys / "locked", "-t", "ed25519", "-N", "correct horse")
    _keygen(keys / "legacy_pem", "-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM")
    rows = {os.path.basename(r["path"]): r for r in ssh.user_key_rows(os.geteuid(), str(home))}
    # public keys, known_hosts and config are not private keys
    assert set(rows) == {"id_ed25519", "id_rsa", "id_ecdsa", "locked", "legacy_pem"}
    for name, row in rows.items():
        if row["encrypted"]:
            continue
        bits, _fp, _comment, kind = sh("ssh-keygen", "-l", "-f", str(keys / name)).split()
        kind = kind.strip("()").lower()
        assert row["key_type"] == {"ecdsa": "ec"}.get(kind, kind), name
        if kind != "ed25519":  # ssh-keygen says 256 for Ed25519; OpenSSL (and osquery) 253
            assert row["key_length"] == int(bits), name
    assert rows["id_ed25519"] == {
        "uid": os.geteuid(),
        "path": str(keys / "id_ed25519"),
        "encrypted": 0,
        "key_type": "ed25519",
        "key_group_name": None,
        "key_length": 253,
        "key_security_bits": 128,
        "pid_with_namespace": 0,
    }
    assert (rows["id_rsa"]["key_security_bits"], rows["legacy_pem"]["key_security_bits"]) == (128, 112)
    assert (rows["id_ecdsa"]["key_group_name"], rows["id_ecdsa"]["key_security_bits"]) == ("secp384r1", 192)
    assert (rows["locked"]["encrypted"], rows["locked"]["key_type"]) == (1, None)


def test_encrypted_pem_and_pkcs8_keys(home):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    keys = home / ".ssh"
    sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(keys / "p256.pem"))
    sh(
        "openssl",
        "pkcs8",
        "-topk8",
        "-in",
        str(keys / "p256.pem"),
        "-out",
        str(keys / "p256.enc"),
        "-passout",
        "pass:x",
    )
    rows = {os.path.basename(r["path"]): r for r in ssh.user_key_rows(os.geteuid(), str(home))}
    assert (rows["p256.pem"]["key_type"], rows["p256.pem"]["key_group_name"], rows["p256.pem"]["key_length"]) == (
        "ec",
        "prime256v1",
        256,
    )
    assert "ASN1 OID: prime256v1" in sh("openssl", "pkey", "-in", str(keys / "p256.pem"), "-noout", "-text")
    assert rows["p256.enc"]["encrypted"] == 1


def test_symlinked_key_is_not_followed(home, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret"
    outside.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    os.symlink(outside, home / ".ssh" / "id_link")
    assert list(ssh.user_key_rows(os.geteuid(), str(home))) == []


def test_user_ssh_keys_table_runs(conn):
    for row in conn.query("SELECT * FROM user_ssh_keys"):
        assert row["encrypted"] in (0, 1)


CONFIG = """
# a comment
Include /nonexistent/*.conf
Host build-box *.example.test
    HostName 192.0.2.10
    Port 2222
    User Deploy
    IdentityFile ~/.ssh/deploy_key

Match user root
    ForwardAgent no
"""


def test_ssh_config_blocks_agree_with_ssh_g(tmp_path):
    if not shutil.which("ssh"):
        pytest.skip("ssh is not installed (Debian package openssh-client)")
    path = tmp_path / "config"
    path.write_text(CONFIG)
    rows = list(ssh.ssh_config_rows(1000, str(path), path.read_bytes()))
    assert rows[0] == {"uid": 1000, "block": "", "option": "include /nonexistent/*.conf", "ssh_config_file": str(path)}
    host_options = [r["option"] for r in rows if r["block"] == "host build-box *.example.test"]
    assert host_options == ["hostname 192.0.2.10", "port 2222", "user deploy", "identityfile ~/.ssh/deploy_key"]
    assert [(r["block"], r["option"]) for r in rows if r["block"].startswith("match")] == [
        ("match user root", "forwardagent no")
    ]
    effective = {line.lower() for line in sh("ssh", "-F", str(path), "-G", "build-box").splitlines()}
    for option in host_options[:3]:
        assert option in effective, option


def test_system_ssh_config_rows(conn):
    if not os.path.exists(ssh.SYSTEM_SSH_CONFIG):
        pytest.skip("no /etc/ssh/ssh_config here")
    rows = conn.query("SELECT * FROM ssh_configs WHERE uid = 0 AND ssh_config_file = ?", (ssh.SYSTEM_SSH_CONFIG,))
    expected = sshfiles.parse_ssh_config(open(ssh.SYSTEM_SSH_CONFIG, "rb").read())  # noqa: SIM115
    assert [(r["block"], r["option"]) for r in rows] == expected
