"""`query --follow --window` over a configured jsonl source: the same windows as `tail`, emitted
once each, open ones flushed when following ends; bad streaming flags are usage errors."""

from __future__ import annotations

import json
import re

from test_cli_tail_windows import COUNT_SQL, as_text, make_records

from conftest import run_cli


def test_follow_windows_equal_tail_windows(tmp_path):
    log = tmp_path / "app.jsonl"
    log.write_text(as_text(make_records(2000)))
    config = tmp_path / "streamq.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{log}"\nfrom_start = true\ntime = "ts"\n')
    follow = run_cli(
        "query", "-c", str(config), "--follow", "--json", "--timeout", "4", "--grace", "3s",
        "--window", "tumble 1s", COUNT_SQL.replace("stream", "app_events"), timeout=60,
    )  # fmt: skip
    assert follow.returncode == 0, follow.stderr
    tail = run_cli("tail", "-", "--time", "ts", "--grace", "3s", "--window", "tumble 1s", "--sql", COUNT_SQL,
                   input=log.read_text())  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    followed = [json.loads(line) for line in follow.stdout.splitlines()]
    assert followed and followed == [json.loads(line) for line in tail.stdout.splitlines()]


def test_follow_refuses_per_batch_aggregates_and_stray_flags(tmp_path):
    config = tmp_path / "streamq.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{tmp_path}/app.jsonl"\n')
    (tmp_path / "app.jsonl").write_text("")
    result = run_cli("query", "-c", str(config), "--follow", "--timeout", "1", "SELECT count(*) FROM app_events")
    assert result.returncode == 2 and "--window" in result.stderr, result.stderr
    result = run_cli("query", "--window", "tumble 1m", "SELECT 1")
    assert result.returncode == 2 and "--window goes with --follow" in result.stderr, result.stderr
    result = run_cli("query", "--window", "tumble 1m", "--dedup", "x", "SELECT 1 AS x")
    assert result.returncode == 2 and "--window, --dedup go with --follow" in result.stderr, result.stderr
    result = run_cli("query", "-c", str(config), "--follow", "--window", "tumble 0s", "SELECT * FROM app_events")
    assert result.returncode == 2 and "above zero" in result.stderr, result.stderr


def test_follow_learns_a_session_key_the_sql_does_not_name(tmp_path):
    log = tmp_path / "app.jsonl"
    log.write_text(as_text(make_records(500)))
    config = tmp_path / "streamq.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{log}"\nfrom_start = true\ntime = "ts"\n')
    window = ["--window", "session 5ms", "--window-key", "user"]
    sql = "SELECT count(*) AS n FROM app_events"
    follow = run_cli("query", "-c", str(config), "--follow", "--json", "--timeout", "4", *window, sql, timeout=60)
    assert follow.returncode == 0, follow.stderr
    tail = run_cli("tail", "-", "--time", "ts", *window, "--sql", sql.replace("app_events", "stream"),
                   input=log.read_text())  # fmt: skip
    followed = [json.loads(line) for line in follow.stdout.splitlines()]
    assert len(followed) > 10 and followed == [json.loads(line) for line in tail.stdout.splitlines()]


def test_follow_says_what_it_skipped_and_what_came_late(tmp_path):
    log = tmp_path / "app.jsonl"
    records = [{"ts": 100.0, "status": 200}, {"ts": 130.5, "status": 200}, {"ts": 110.0, "status": 500}]
    log.write_text(as_text(records) + '{"status": 404}\nnot json\n')
    config = tmp_path / "streamq.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{log}"\nfrom_start = true\ntime = "ts"\n')
    sql = COUNT_SQL.replace("stream", "app_events")
    follow = run_cli("query", "-c", str(config), "--follow", "--json", "--timeout", "3", "--window", "tumble 10s", sql)
    assert follow.returncode == 0, follow.stderr
    assert [json.loads(line)["window_start"] for line in follow.stdout.splitlines()] == [100, 130]
    assert "app_events: skipped 2 record(s)" in follow.stderr, follow.stderr
    assert "1 late row(s)" in follow.stderr, follow.stderr


def test_follow_counts_rows_the_ring_overwrote_before_it_read_them(tmp_path):
    """A ring smaller than the backlog may lose rows (how many depends on timing): every row is
    either in a window's count or in the 'missed' note, never silently gone."""
    log = tmp_path / "app.jsonl"
    log.write_text(as_text([{"ts": 1000.0 + i / 10, "status": 200} for i in range(3000)]))
    config = tmp_path / "streamq.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{log}"\nfrom_start = true\ntime = "ts"\n[rings]\ncapacity = 100\n')
    sql = "SELECT count(*) AS n FROM app_events"
    follow = run_cli("query", "-c", str(config), "--follow", "--json", "--timeout", "3", "--window", "tumble 1h", sql)
    assert follow.returncode == 0, follow.stderr
    counted = sum(json.loads(line)["n"] for line in follow.stdout.splitlines())
    missed = re.search(r"missed (\d+) row\(s\)", follow.stderr)
    assert counted + (int(missed.group(1)) if missed else 0) == 3000, follow.stderr


def test_follow_says_how_many_rows_the_limit_held_back(tmp_path):
    log = tmp_path / "app.jsonl"
    log.write_text(as_text([{"user": f"u{i}"} for i in range(10)]))
    config = tmp_path / "streamq.toml"
    config.write_text(f'[sources.jsonl.app]\npath = "{log}"\nfrom_start = true\n')
    sql = "SELECT user FROM app_events"
    follow = run_cli("query", "-c", str(config), "--follow", "--json", "--timeout", "3", "--limit", "3/1h", sql)
    assert follow.returncode == 0, follow.stderr
    lines = [json.loads(line) for line in follow.stdout.splitlines()]
    assert lines[:3] == [{"user": "u0"}, {"user": "u1"}, {"user": "u2"}]
    assert len(lines) == 4 and lines[3]["action"] == "suppressed" and lines[3]["suppressed"] == 7, lines
