"""--help: the version at the top, an example for every subcommand; completion scripts cover the parser."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import run_cli
from streamq._version import __version__
from streamq.cli.completion_scripts import commands, walk
from streamq.cli.parser import build_parser

PATHS = [c.path for c in commands(walk(build_parser())) if c.path]


def test_top_help_names_the_version():
    result = run_cli("--help")
    assert result.returncode == 0
    assert f"streamq {__version__}" in result.stdout and "examples:" in result.stdout


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_subcommand_help_has_an_example(path):
    result = run_cli(*path, "--help")
    assert result.returncode == 0, result.stderr
    example = result.stdout.split("example", 1)[1]
    assert f"streamq {' '.join(path)}" in example, result.stdout  # the example uses this very subcommand


def test_completion_scripts_know_every_subcommand_and_option():
    bash = run_cli("completion", "bash").stdout
    zsh = run_cli("completion", "zsh").stdout
    parser = build_parser()
    for command in commands(walk(parser)):
        for name in command.children:
            assert f"|{name}" in bash and f"{name}:" in zsh
        for options, *_ in command.flags + command.valued:
            for option in options:
                assert option in bash and option in zsh
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n"], input=bash, text=True).returncode == 0
    if shutil.which("zsh"):
        assert subprocess.run(["zsh", "-n"], input=zsh, text=True).returncode == 0


def test_completion_needs_a_known_shell():
    result = run_cli("completion", "fish")
    assert result.returncode == 2 and "invalid choice" in result.stderr
