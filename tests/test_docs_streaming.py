"""docs/streaming.md: its config examples pass `run --check` as written, and the reference config
(conf/streamq.toml, the embedded default) shows every streaming option."""

from __future__ import annotations

import re

from conftest import ROOT, run_cli

DOC = ROOT / "docs" / "streaming.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)


def test_config_examples_pass_check(tmp_path):
    source, windowed, listening, pubsub = blocks("toml")
    for number, text in enumerate([source + windowed, listening, pubsub]):
        path = tmp_path / f"example{number}.toml"
        path.write_text(f'[state]\npath = "{tmp_path}/state.db"\n' + text)
        result = run_cli("run", "--check", "-c", str(path))
        assert result.returncode == 0, (text, result.stderr)


def test_reference_config_shows_each_streaming_option():
    text = (ROOT / "conf" / "streamq.toml").read_text()
    for option in ("window", "window_key", "emit", "grace", "dedup", "dedup_for", "limit", "time", "max_rows_per_run"):
        assert re.search(rf"^#? ?{option} = ", text, flags=re.M), option
