"""The reference config's commented-out examples are valid: each block, uncommented, loads."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from streamq.config.loader import parse

TEXT = (ROOT / "streamq" / "default.toml").read_text()


def commented_blocks(text: str) -> dict[str, str]:
    """``# [section]`` and the ``# key = value`` lines under it, uncommented, keyed by section."""
    blocks: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        header = re.match(r"^# (\[[a-z_.]+\])", line)
        if header:
            current = header.group(1)
            blocks[current] = header.group(1) + "\n"
        elif current and re.match(r"^# [a-z_]+ = ", line):
            blocks[current] += line[2:] + "\n"
        else:
            current = None
    return blocks


BLOCKS = {name: body for name, body in commented_blocks(TEXT).items() if name.startswith(("[sinks.", "[metrics"))}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_commented_block_loads(name, tmp_path):
    (tmp_path / "key").write_text("secret\n")  # files the examples name exist on the host they run on
    body = re.sub(r'(secret_file|key_file) = "[^"]*"', f'\\1 = "{tmp_path}/key"', BLOCKS[name])
    text = body + '[queries.q]\nsql = "SELECT 1"\ninterval = 60\n'
    config = parse(text, f"<{name}>")
    assert config.sinks or config.metrics.listen


def test_every_sink_type_has_an_example():
    from streamq.sinks import SINKS

    documented = set(re.findall(r'^#? ?type = "(\w+)"', TEXT, re.M))
    assert set(SINKS) <= documented, set(SINKS) - documented


def test_the_commented_audit_source_loads():
    """The audit source is off in the default (commented out); its example, uncommented, names it."""
    assert "\n[sources.audit]" not in TEXT
    config = parse(commented_blocks(TEXT)["[sources.audit]"], "<[sources.audit]>")
    assert config.sources["audit"].mode == "auto"
