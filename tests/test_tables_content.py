"""extended_attributes, magic, yara_file and yara_process against getfattr, getcap, file and yara."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time

import pytest

from conftest import needs_root, retry


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60).stdout


def need(tool: str, package: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (Debian package {package})")


# --- extended_attributes ------------------------------------------------------------------


def _getfattr(path) -> dict[str, str]:
    """name -> base64 value, from getfattr's own dump."""
    out = sh("getfattr", "--absolute-names", "-d", "-m", "-", "-e", "base64", str(path))
    pairs = {}
    for line in out.splitlines():
        if "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value.removeprefix("0s")
    return pairs


def test_extended_attributes_match_getfattr(conn, tmp_path):
    need("setfattr", "attr")
    path = tmp_path / "tagged"
    path.write_text("x")
    sh("setfattr", "-n", "user.origin", "-v", "https://example.test/a", str(path))
    sh("setfattr", "-n", "user.blob", "-v", "0x00ff10", str(path))
    sh("setfattr", "-n", "user.label", "-v", "0x68656c6c6f00", str(path))  # "hello" with its C NUL
    rows = conn.query("SELECT * FROM extended_attributes WHERE path = ?", (str(path),))
    if not rows:
        pytest.skip("the tmp file system keeps no user xattrs")
    ours = {r["key"]: r for r in rows}
    theirs = _getfattr(path)
    assert set(ours) == set(theirs)
    # as osquery: only NUL-terminated printable text is text; everything else is base64 of the raw bytes
    assert base64.b64decode(theirs["user.label"]) == b"hello\0"
    assert (ours["user.label"]["value"], ours["user.label"]["base64"]) == ("hello", 0)
    assert (ours["user.origin"]["value"], ours["user.origin"]["base64"]) == (theirs["user.origin"], 1)
    assert base64.b64decode(ours["user.origin"]["value"]) == b"https://example.test/a"
    assert (ours["user.blob"]["value"], ours["user.blob"]["base64"]) == (theirs["user.blob"], 1)
    assert {r["directory"] for r in rows} == {str(tmp_path)}
    by_dir = conn.query("SELECT path, key FROM extended_attributes WHERE directory = ?", (str(tmp_path),))
    assert {(r["path"], r["key"]) for r in by_dir} == {(str(path), k) for k in theirs}


def test_text_value_with_nul_terminator_is_text():
    from streamq.host import xattrs

    assert xattrs.shown_value(b"hello\0") == ("hello", 0)
    assert xattrs.shown_value(b"hello") == (base64.b64encode(b"hello").decode(), 1)
    assert xattrs.shown_value(b"") == ("", 1)


@needs_root
def test_file_capabilities_as_getcap_shows_them(conn, tmp_path):
    need("setcap", "libcap2-bin")
    path = tmp_path / "pinger"
    shutil.copy("/bin/true", path)
    if subprocess.run(["setcap", "cap_net_raw,cap_net_admin+ep", str(path)], capture_output=True).returncode:
        pytest.skip("the tmp file system refuses security.capability")
    (row,) = conn.query(
        "SELECT * FROM extended_attributes WHERE path = ? AND key = 'security.capability'", (str(path),)
    )
    getcap = sh("getcap", str(path)).split(None, 1)[1].strip()
    assert row["value"] == getcap and row["base64"] == 0


def test_missing_file_has_no_rows(conn, tmp_path):
    assert conn.query("SELECT * FROM extended_attributes WHERE path = ?", (str(tmp_path / "nope"),)) == []


# --- magic --------------------------------------------------------------------------------


def test_magic_matches_file_brief(conn, tmp_path):
    need("file", "file")
    (tmp_path / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "data.json").write_text('{"a": [1, 2]}\n')
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    shutil.copy(sys.executable, tmp_path / "python")
    rows = conn.query("SELECT * FROM magic WHERE path LIKE ?", (f"{tmp_path}/%",))
    assert len(rows) == 4
    for row in rows:
        path = row["path"]
        assert row["data"] == sh("file", "--brief", path).strip(), path
        assert row["mime_type"] == sh("file", "--brief", "--mime-type", path).strip(), path
        assert row["mime_encoding"] == sh("file", "--brief", "--mime-encoding", path).strip(), path


def test_magic_with_its_own_database(conn, tmp_path):
    need("file", "file")
    db = tmp_path / "streamq.magic"
    db.write_text("0\tstring\tSTREAMQ1\tstreamq test format\n!:mime\tapplication/x-streamq\n")
    sample = tmp_path / "sample.bin"
    sample.write_bytes(b"STREAMQ1" + bytes(range(32)))
    (row,) = conn.query("SELECT * FROM magic WHERE path = ? AND magic_db_files = ?", (str(sample), str(db)))
    assert row["data"] == sh("file", "--brief", "-m", str(db), str(sample)).strip() == "streamq test format"
    assert row["mime_type"] == "application/x-streamq"


# --- yara ---------------------------------------------------------------------------------

RULES = """
rule has_marker : test suspicious {
  strings:
    $a = "streamq-yara-marker"
    $b = { 7f 45 4c 46 }
  condition:
    any of them
}
rule never_matches { condition: false }
"""


def yara_cli(rule_file, target) -> tuple[set[str], set[str]]:
    """(rule names, "$id:hexoffset" strings) from the yara command, in fast mode as we scan."""
    out = sh("yara", "-s", "-f", str(rule_file), str(target))
    names, strings = set(), set()
    for line in out.splitlines():
        if line.startswith("0x"):
            offset, identifier = line.split(":", 2)[:2]
            strings.add(f"{identifier}:{int(offset, 16):x}")
        elif line.strip():
            names.add(line.split()[0])
    return names, strings


@pytest.fixture
def rule_file(tmp_path):
    need("yara", "yara")
    path = tmp_path / "rules.yar"
    path.write_text(RULES)
    return path


def test_yara_file_matches_the_yara_command(conn, tmp_path, rule_file):
    (tmp_path / "hit.txt").write_text("prefix streamq-yara-marker suffix")
    (tmp_path / "miss.txt").write_text("nothing here")
    rows = {
        r["path"]: r
        for r in conn.query(
            "SELECT * FROM yara_file WHERE path LIKE ? AND sigfile = ?", (f"{tmp_path}/%.txt", str(rule_file))
        )
    }
    hit, miss = rows[str(tmp_path / "hit.txt")], rows[str(tmp_path / "miss.txt")]
    names, strings = yara_cli(rule_file, tmp_path / "hit.txt")
    assert set(hit["matches"].split(",")) == names == {"has_marker"}
    assert set(hit["strings"].split(",")) == strings == {"$a:7"}
    assert (hit["count"], hit["tags"], hit["sigfile"], hit["sig_group"]) == (1, "test,suspicious", str(rule_file), "")
    assert (miss["matches"], miss["count"], miss["strings"]) == ("", 0, "")


def test_yara_sigrule_and_compiled_rules(conn, tmp_path, rule_file):
    import yara  # yarac's files only load into the same libyara version: compile with the binding's own

    compiled = tmp_path / "rules.yarc"
    yara.compile(filepath=str(rule_file)).save(str(compiled))
    (row,) = conn.query("SELECT matches FROM yara_file WHERE path = ? AND sigfile = ?", (sys.executable, str(compiled)))
    assert row["matches"] == "has_marker"
    rule = "rule elf { condition: uint32(0) == 0x464c457f }"
    (row,) = conn.query("SELECT matches, sigrule FROM yara_file WHERE path = ? AND sigrule = ?", (sys.executable, rule))
    assert row == {"matches": "elf", "sigrule": rule}


def test_yara_without_rules_yields_nothing(conn):
    assert conn.query("SELECT * FROM yara_file WHERE path = '/bin/ls'") == []


@needs_root
def test_yara_process_matches_the_yara_command(conn, tmp_path, rule_file):
    marker_rule = tmp_path / "proc.yar"
    marker_rule.write_text('rule in_memory { strings: $m = "streamq-proc-marker-8e1f" condition: $m }')
    code = "import time; held = 'streamq-proc-marker-' + '8e1f'; print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        names, strings = yara_cli(marker_rule, child.pid)
        assert names == {"in_memory"}
        (row,) = conn.query("SELECT * FROM yara_process WHERE pid = ? AND sigfile = ?", (child.pid, str(marker_rule)))
        assert row["matches"] == "in_memory" and row["count"] == 1
        assert set(row["strings"].split(",")) == strings
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_content_tables_cost_nothing_at_cold_start():
    code = "import sys, streamq.tables.content; print([m for m in ('magic', 'yara') if m in sys.modules])"
    start = time.monotonic()
    out = sh(sys.executable, "-c", code)
    assert out.strip() == "[]", f"imported at startup: {out}"
    assert retry(lambda: time.monotonic() - start < 30)


@pytest.mark.parametrize(
    ("module", "sql"),
    [
        ("magic", "SELECT * FROM magic WHERE path = '/bin/ls'"),
        ("yara", "SELECT * FROM yara_file WHERE path = '/bin/ls' AND sigrule = 'rule a { condition: true }'"),
        ("augeas", "SELECT * FROM augeas WHERE path = '/etc/hosts'"),
    ],
)
def test_missing_library_is_one_note_and_no_rows(module, sql):
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"  # as if the package were not installed
        "import streamq\n"
        "conn = streamq.connect()\n"
        f"print(len(conn.query({sql!r})), len(conn.query({sql!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0"]
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and module in notes[0] and "install" in notes[0], result.stderr


def test_yara_sig_group_from_config(conn, tmp_path, rule_file, monkeypatch):
    from streamq.host import yarascan

    monkeypatch.setitem(yarascan.SIGNATURE_GROUPS, "base", [str(rule_file)])
    (tmp_path / "hit.txt").write_text("streamq-yara-marker")
    (row,) = conn.query(
        "SELECT matches, sig_group FROM yara_file WHERE path = ? AND sig_group = 'base'", (str(tmp_path / "hit.txt"),)
    )
    assert row == {"matches": "has_marker", "sig_group": "base"}
