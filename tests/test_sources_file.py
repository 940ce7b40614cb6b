"""file_events from inotify: real tmp dirs, real writes, checked against os.stat and hashlib."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, needs_root, run_cli
from streamq.ring import Rings
from streamq.sources.base import SourceUnavailable
from streamq.sources.file import RETRY_INTERVAL, FileSource
from streamq.sources.file_patterns import Excludes, minimal_roots, pattern_regex, plan
from streamq.text import decode, encode_path

QUEUE_SYSCTL = Path("/proc/sys/fs/inotify/max_queued_events")


@pytest.fixture
async def start_source():
    """start(options) -> a running FileSource with its watches in place; tasks cancelled after."""
    tasks: list[asyncio.Task] = []

    async def start(options: dict) -> FileSource:
        source = FileSource("file_events", options, Rings())
        task = asyncio.create_task(source.run())
        tasks.append(task)
        for _ in range(250):
            if source.ready.is_set() or task.done():
                break
            await asyncio.sleep(0.02)
        if task.done():
            task.result()  # raise what stopped it
        assert source.ready.is_set()
        return source

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def rows(source: FileSource) -> list[dict]:
    return [row for _, _, row in source.ring.since(0)]


async def wait_for_row(source: FileSource, timeout: float = 5.0, **match) -> dict:
    """The first row whose columns equal ``match``, waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for row in rows(source):
            if all(row.get(k) == v for k, v in match.items()):
                return row
        if time.monotonic() > deadline:
            raise AssertionError(f"no row {match}; got {[(r['action'], r['target_path']) for r in rows(source)]}")
        await asyncio.sleep(0.01)


def actions_of(source: FileSource, path: Path | str) -> list[str]:
    return [r["action"] for r in rows(source) if r["target_path"] == str(path)]


# -- patterns (pure) -------------------------------------------------------------------------


def test_patterns_plan_watches_like_osquery(tmp_path):
    recursive = plan("/etc/%%")
    assert (recursive.base, recursive.recursive) == ("/etc", True)
    assert recursive.regex.fullmatch("/etc/ssh/sshd_config") and not recursive.regex.fullmatch("/etcx/a")
    level = plan("/srv/www/%")
    assert (level.base, level.recursive) == ("/srv/www", False)
    assert level.regex.fullmatch("/srv/www/index.html") and not level.regex.fullmatch("/srv/www/a/b")
    assert plan("/etc/%.conf").regex.fullmatch("/etc/a.conf") and not plan("/etc/%.conf").regex.fullmatch("/etc/a")
    assert plan(str(tmp_path)).regex.fullmatch(f"{tmp_path}/x")  # a literal directory stands for its entries
    literal = plan("/etc/hostname")
    assert (literal.base, literal.recursive) == ("/etc", False) and not literal.regex.fullmatch("/etc/hosts")
    assert minimal_roots({("/a", True), ("/a", False), ("/a/b", False), ("/ab", False)}) == [
        ("/a", True),
        ("/ab", False),
    ]
    assert pattern_regex("/x/%%").fullmatch("/x/a/b/c") and not pattern_regex("/x/%").fullmatch("/x/a/b")
    skip = Excludes(["/a/secret", "/a/%.log"])
    assert skip("/a/secret") and skip("/a/secret/k") and skip("/a/x.log")
    assert not skip("/a/secrets") and not skip("/a/b/x.log")
    with pytest.raises(ValueError):
        plan("relative/%%")


# -- the source on a real tmp dir --------------------------------------------------------------


async def test_create_write_move_chmod_delete(start_source, tmp_path):
    source = await start_source({"paths": [f"{tmp_path}/%%"]})
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"hello")
    created = await wait_for_row(source, target_path=str(first), action="CREATED")
    assert created["category"] == f"{tmp_path}/%%" and created["transaction_id"] == 0
    updated = await wait_for_row(source, target_path=str(first), action="UPDATED", size=5)
    st = os.stat(first)
    assert (updated["inode"], updated["uid"], updated["gid"]) == (st.st_ino, st.st_uid, st.st_gid)
    assert updated["mode"] == f"{st.st_mode & 0o7777:04o}" and updated["mtime"] == int(st.st_mtime)
    assert updated["hashed"] == 0  # hashing not asked

    os.rename(first, second)
    moved_from = await wait_for_row(source, target_path=str(first), action="MOVED_FROM")
    moved_to = await wait_for_row(source, target_path=str(second), action="MOVED_TO")
    assert moved_from["transaction_id"] == moved_to["transaction_id"] != 0
    assert moved_to["inode"] == st.st_ino

    os.chmod(second, 0o600)
    attrib = await wait_for_row(source, target_path=str(second), action="ATTRIBUTES_MODIFIED")
    assert attrib["mode"] == "0600"

    second.unlink()
    deleted = await wait_for_row(source, target_path=str(second), action="DELETED")
    assert deleted.get("inode") is None  # nothing left to stat
    assert source.status.errors == 0 and source.status.overflows == 0


async def test_recursive_versus_one_level(start_source, tmp_path):
    deep, flat = tmp_path / "deep", tmp_path / "flat"
    deep.mkdir()
    flat.mkdir()
    (deep / "old").mkdir()  # existing subdirectories are watched by '%%' too
    source = await start_source({"paths": [f"{deep}/%%", f"{flat}/%"]})
    (deep / "old" / "a").write_text("x")
    (deep / "new" / "inner").mkdir(parents=True)
    (deep / "new" / "inner" / "b").write_text("x")
    (flat / "sub").mkdir()
    (flat / "sub" / "hidden").write_text("x")
    (flat / "top").write_text("x")
    await wait_for_row(source, target_path=str(deep / "old" / "a"), action="CREATED")
    await wait_for_row(source, target_path=str(deep / "new" / "inner" / "b"), action="CREATED")
    sub = await wait_for_row(source, target_path=str(flat / "sub"), action="CREATED")
    assert sub["category"] == f"{flat}/%" and sub["mode"] == f"{os.stat(flat / 'sub').st_mode & 0o7777:04o}"
    await wait_for_row(source, target_path=str(flat / "top"), action="UPDATED")
    assert actions_of(source, flat / "sub" / "hidden") == []  # '%' is one level only
    assert {r["category"] for r in rows(source) if r["target_path"].startswith(str(deep))} == {f"{deep}/%%"}


async def test_exclude_patterns_and_exact_paths(start_source, tmp_path):
    (tmp_path / "private").mkdir()
    source = await start_source({"paths": [f"{tmp_path}/%%"], "exclude": [f"{tmp_path}/private", f"{tmp_path}/%.log"]})
    (tmp_path / "private" / "key").write_text("x")
    (tmp_path / "app.log").write_text("x")
    (tmp_path / "kept").write_text("x")
    await wait_for_row(source, target_path=str(tmp_path / "kept"), action="UPDATED")
    paths = {r["target_path"] for r in rows(source)}
    assert str(tmp_path / "private" / "key") not in paths and str(tmp_path / "app.log") not in paths
    assert str(tmp_path / "kept") in paths


async def test_hashes_match_hashlib_and_respect_the_cap(start_source, tmp_path):
    source = await start_source({"paths": [f"{tmp_path}/%"], "hash": ["md5", "sha1", "sha256"], "hash_max_bytes": 4096})
    data = os.urandom(3000)
    (tmp_path / "data").write_bytes(data)
    row = await wait_for_row(source, target_path=str(tmp_path / "data"), hashed=1, size=len(data))
    assert row["md5"] == hashlib.md5(data).hexdigest()
    assert row["sha1"] == hashlib.sha1(data).hexdigest()
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    (tmp_path / "big").write_bytes(os.urandom(10_000))
    # Each write's UPDATED is not hashed (0: content in flux); the one at close is over the cap (-1).
    big = await wait_for_row(source, target_path=str(tmp_path / "big"), action="UPDATED", hashed=-1)
    assert big["size"] == 10_000 and big.get("sha256") is None
    assert {r["hashed"] for r in rows(source) if r["target_path"] == str(tmp_path / "big")} <= {0, -1}
    # Rows of one file keep their order even though hashing happens in a pool.
    kinds = actions_of(source, tmp_path / "data")
    assert kinds[0] == "CREATED" and set(kinds[1:]) == {"UPDATED"}


async def test_non_utf8_name_is_escaped_not_an_error(start_source, tmp_path):
    source = await start_source({"paths": [f"{tmp_path}/%"]})
    raw = os.fsencode(tmp_path) + b"/caf\xe9"
    fd = os.open(raw, os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    row = await wait_for_row(source, target_path=decode(raw), action="CREATED")
    assert row["target_path"].endswith("caf\\xe9")
    assert encode_path(row["target_path"]) == raw and row["inode"] == os.stat(raw).st_ino
    assert source.status.errors == 0


async def test_missing_path_is_counted_and_watched_once_it_appears(start_source, tmp_path):
    later, now = tmp_path / "later", tmp_path / "now"
    now.mkdir()
    source = await start_source({"paths": [f"{later}/%%", f"{now}/%"]})
    assert source.status.errors == 1 and str(later) in source.status.last_error
    (now / "a").write_text("x")  # the other path works meanwhile
    await wait_for_row(source, target_path=str(now / "a"), action="CREATED")
    later.mkdir()
    (later / "early").write_text("x")  # written before the watch exists: reported by the catch-up scan
    row = await wait_for_row(source, timeout=RETRY_INTERVAL * 3, target_path=str(later / "early"), action="CREATED")
    assert row["size"] == 1
    await asyncio.sleep(0.1)
    (later / "live").write_text("x")
    await wait_for_row(source, target_path=str(later / "live"), action="CREATED")
    assert source.status.errors == 1  # the retries did not count again


async def test_deleted_root_is_watched_again_when_it_returns(start_source, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    source = await start_source({"paths": [f"{root}/%"]})
    root.rmdir()
    await asyncio.sleep(0.1)
    root.mkdir()
    deadline = time.monotonic() + RETRY_INTERVAL * 3
    n = 0
    while not any(r["target_path"].startswith(f"{root}/again") for r in rows(source)):
        assert time.monotonic() < deadline, "the recreated directory was never watched again"
        n += 1
        (root / f"again{n}").write_text("x")
        await asyncio.sleep(0.2)


async def test_no_paths_is_a_clear_unavailable():
    source = FileSource("file_events", {}, Rings())
    with pytest.raises(SourceUnavailable, match="no paths"):
        await source.run()


# -- kernel limits ---------------------------------------------------------------------------


@needs_root
async def test_queue_overflow_is_counted_and_rescanned(start_source, tmp_path):
    saved = QUEUE_SYSCTL.read_text()
    QUEUE_SYSCTL.write_text("8")  # read at inotify_init: only the source's own instance gets it
    try:
        source = await start_source({"paths": [f"{tmp_path}/%"]})
    finally:
        QUEUE_SYSCTL.write_text(saved)
    assert QUEUE_SYSCTL.read_text() == saved
    for burst in range(20):
        for i in range(200):
            (tmp_path / f"f{burst}-{i}").write_bytes(b"x")
        await asyncio.sleep(0.05)
        if source.status.overflows:
            break
    assert source.status.overflows >= 1
    marker = await wait_for_row(source, action="RESCAN")
    assert marker["target_path"] == str(tmp_path) and marker["inode"] == os.stat(tmp_path).st_ino
    eid = next(e for e, _, r in source.ring.since(0) if r["action"] == "RESCAN")
    written = {str(p) for p in tmp_path.iterdir()}
    deadline = time.monotonic() + 5
    while missing := written - {r["target_path"] for r in rows(source)}:  # the walk may still be running
        assert time.monotonic() < deadline, f"{len(missing)} files never reported after the rescan"
        await asyncio.sleep(0.05)
    rescanned = [r for _, _, r in source.ring.since(eid) if r["action"] == "UPDATED" and r["transaction_id"] == 0]
    assert rescanned  # the rescan itself reported the files it found


_LIMIT_SCRIPT = """
import asyncio, json, sys
from streamq.ring import Rings
from streamq.sources.file import FileSource
limit, top = sys.argv[1], sys.argv[2]
open("/proc/sys/user/max_inotify_watches", "w").write(limit)
async def main():
    src = FileSource("file_events", {"paths": [top + "/%%"]}, Rings())
    task = asyncio.create_task(src.run())
    for _ in range(250):
        if src.ready.is_set() or task.done():
            break
        await asyncio.sleep(0.02)
    out = {"ready": src.ready.is_set(), "errors": src.status.errors, "last_error": src.status.last_error}
    if task.done():
        out["raised"] = type(task.exception()).__name__
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(json.dumps(out))
asyncio.run(main())
"""


def _in_user_namespace(limit: int, top: Path) -> dict:
    # A user namespace has its own inotify watch limit, so this test cannot starve the host.
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.decode().strip()}")
    cmd = ["unshare", "--user", "--map-root-user", sys.executable, "-c", _LIMIT_SCRIPT, str(limit), str(top)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_watch_limit_names_the_sysctl(tmp_path):
    for i in range(6):
        (tmp_path / f"d{i}").mkdir()
    partial = _in_user_namespace(3, tmp_path)  # the root and two subdirectories fit
    assert partial["ready"] and partial["errors"] == 4
    assert "fs.inotify.max_user_watches" in partial["last_error"]
    nothing = _in_user_namespace(0, tmp_path)
    assert nothing["raised"] == "SourceUnavailable" and not nothing["ready"]
    assert "fs.inotify.max_user_watches" in nothing["last_error"] and nothing["errors"] == 1


# -- end to end ------------------------------------------------------------------------------


def test_cli_follow_prints_the_event(tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    config = tmp_path / "cfg.toml"
    config.write_text(f'[sources.file]\npaths = ["{watched}/%%"]\n')
    stop = threading.Event()

    def touch_until_done() -> None:
        n = 0
        while not stop.wait(0.3):
            n += 1
            (watched / f"f{n}").write_text("x")

    writer = threading.Thread(target=touch_until_done, daemon=True)
    writer.start()
    try:
        sql = "SELECT action, target_path FROM file_events"
        result = run_cli("query", "--follow", "--json", "--count", "1", "--timeout", "10", "-c", str(config), sql)
    finally:
        stop.set()
        writer.join()
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0]["action"] == "CREATED" and lines[0]["target_path"].startswith(f"{watched}/f")
