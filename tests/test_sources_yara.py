"""yara_events: a watched tmp dir, rules the test writes, files written and moved in; rows read through SQL
and checked against what the yara command prints for the same file and rules."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest
from source_harness import running
from test_tables_content import yara_cli  # `yara -s` read the same way

import streamq
from conftest import until
from streamq.ring import Rings
from streamq.sources.base import SourceUnavailable
from streamq.sources.yara import YaraSource

RULES = """
rule has_marker : test suspicious {
  strings:
    $a = "streamq-yara-marker"
    $b = "second-marker"
  condition:
    any of them
}
rule elf_magic { strings: $elf = { 7f 45 4c 46 } condition: $elf at 0 }
rule never_matches { condition: false }
"""


@pytest.fixture
def rule_file(tmp_path):
    if shutil.which("yara") is None:
        pytest.skip("the yara command is not installed (apt-get install yara)")
    path = tmp_path / "rules.yar"
    path.write_text(RULES)
    return path


def options(watched, rule_file, **more) -> dict:
    return {
        "paths": {"uploads": [f"{watched}/%%"]},
        "file_paths": {"uploads": ["base"]},
        "signatures": {"base": [str(rule_file)]},
        **more,
    }


def ready(source) -> bool:
    return source.ready.is_set()


async def test_written_and_moved_in_files_match_the_yara_command(tmp_path, rule_file):
    watched = tmp_path / "watched"
    (watched / "sub").mkdir(parents=True)
    rings = Rings()
    async with running(YaraSource("yara_events", options(watched, rule_file), rings), ready) as source:
        hit = watched / "hit.txt"
        hit.write_text("prefix streamq-yara-marker and second-marker suffix")
        (watched / "miss.txt").write_text("nothing to see here")
        outside = tmp_path / "elsewhere.bin"
        outside.write_bytes(b"\x7fELF" + bytes(64) + b"streamq-yara-marker")
        moved = watched / "sub" / "moved.bin"
        os.rename(outside, moved)  # whole when it arrives: MOVED_TO, scanned once
        with streamq.connect(rings=rings) as conn:

            def rows():
                return conn.query("SELECT * FROM yara_events ORDER BY eid")

            assert await until(lambda: {r["target_path"] for r in rows()} >= {str(hit), str(moved)}), source.status
            # the miss was written before the moved file; one scan worker, in order: it was scanned already
            got = {r["target_path"]: r for r in rows()}
            assert set(got) == {str(hit), str(moved)}, "the non-matching file has no row (osquery adds matches only)"
            for path, action in ((hit, "UPDATED"), (moved, "MOVED_TO")):
                row = got[str(path)]
                names, strings = yara_cli(rule_file, path)
                assert set(row["matches"].split(",")) == names and row["count"] == len(names)
                assert set(row["strings"].split(",")) == strings
                assert (row["category"], row["action"]) == ("uploads", action)
            assert got[str(hit)]["tags"] == "test,suspicious" and got[str(moved)]["count"] == 2
            assert conn.query("SELECT count(*) AS n FROM yara_events WHERE target_path = ?", (str(hit),)) == [{"n": 1}]


async def test_same_columns_as_yara_file(tmp_path, rule_file, conn):
    watched = tmp_path / "watched"
    watched.mkdir()
    rings = Rings()
    async with running(YaraSource("yara_events", options(watched, rule_file), rings), ready):
        target = watched / "sample.bin"
        target.write_bytes(b"\x7fELF streamq-yara-marker")
        with streamq.connect(rings=rings) as events:
            assert await until(lambda: events.query("SELECT 1 FROM yara_events"))
            cols = "matches, count, strings, tags"
            (event,) = events.query(f"SELECT {cols} FROM yara_events")
    (scan,) = conn.query(f"SELECT {cols} FROM yara_file WHERE path = ? AND sigfile = ?", (str(target), str(rule_file)))
    assert event == scan


async def test_unreadable_and_vanishing_files_are_skipped_quietly(tmp_path, rule_file):
    watched = tmp_path / "watched"
    watched.mkdir()
    rings = Rings()
    async with running(YaraSource("yara_events", options(watched, rule_file), rings), ready) as source:
        for i in range(20):  # written and removed at once: most are gone before their scan
            path = watched / f"brief{i}.txt"
            path.write_text("streamq-yara-marker")
            path.unlink()
        fifo = watched / "fifo"
        os.mkfifo(fifo)  # not a regular file: never opened for a scan (that would block)
        last = watched / "last.txt"
        last.write_text("streamq-yara-marker")
        assert await until(lambda: any(r["target_path"] == str(last) for _, _, r in source.ring.since(0)))
        assert source.status.errors == 0, source.status.last_error
        brief = [r for _, _, r in source.ring.since(0) if "brief" in r["target_path"]]
        # each brief file: scanned in time, gone before its scan (skipped), or gone before its stat (no scan)
        assert source.status.skipped + len(brief) <= 20
        skipped = source.status.skipped
        gone = {"target_path": str(watched / "gone.txt"), "category": "uploads", "action": "UPDATED"}
        source._pending += 1  # as _submit counts it
        source._scan(gone, os.fsencode(gone["target_path"]))  # the worker's step, on a path that is not there
        assert (source.status.skipped, source.status.errors) == (skipped + 1, 0)


async def test_not_configured_or_broken_rules_say_why(tmp_path, rule_file):
    with pytest.raises(SourceUnavailable, match="nothing to scan"):
        await YaraSource("yara_events", None, Rings()).run()
    bad = tmp_path / "bad.yar"
    bad.write_text("rule broken { condition: nonsense ")
    source = YaraSource("yara_events", options(tmp_path, bad), Rings())
    with pytest.raises(SourceUnavailable, match="no signature group compiled"):
        await asyncio.wait_for(source.run(), 30)
    assert "cannot compile" in source.status.last_error
    missing = YaraSource("yara_events", options(tmp_path, rule_file, file_paths={"uploads": ["nope"]}), Rings())
    with pytest.raises(SourceUnavailable):
        await asyncio.wait_for(missing.run(), 30)
    assert "no signature group 'nope'" in missing.status.last_error
    assert YaraSource.warnings(missing.options) == ["file_paths category 'uploads': no signature group 'nope'"]
