"""The shell and the shell completion through a pseudo-terminal, as a person types them:
pexpect drives `streamq shell`; tmux runs real bash and zsh sessions pressing Tab."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from conftest import ROOT, retry

pexpect = pytest.importorskip("pexpect", reason="pexpect is not installed")

ENV = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "HOME": "/tmp", "COLUMNS": "200"}


@pytest.fixture
def shell(request):
    child = pexpect.spawn(
        sys.executable, ["-m", "streamq", "shell"], cwd=str(ROOT), env=ENV, encoding="utf-8", timeout=20,
        dimensions=(50, 200),
    )  # fmt: skip
    request.addfinalizer(lambda: child.terminate(force=True))
    child.expect_exact("Enter .help")
    child.expect_exact("streamq>")
    return child


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
_marks = itertools.count()


def run(child, line: str) -> str:
    """Type ``line`` and Enter, then a marker query; return what the terminal showed in between,
    without escape sequences. (prompt_toolkit redraws the prompt line, so the next prompt
    alone cannot tell that the output ended.)"""
    mark = f"mark{next(_marks)}"
    child.sendline(line)
    child.sendline(f"SELECT '{mark}' AS m;")
    child.expect(f"{mark}[^']")
    return ANSI.sub("", child.before)


def test_meta_commands_and_null_on_a_terminal(shell):
    out = run(shell, "SELECT 1 AS one, NULL AS missing, '' AS empty;")
    assert "| one | missing | empty |" in out and "| 1   | NULL    |       |" in out  # NULL is visible
    run(shell, ".mode column")
    out = run(shell, "SELECT 'a' AS letter, NULL AS n;")
    assert "letter  n" in out and "------  ----" in out and "a       NULL" in out
    run(shell, '.nullvalue "(none)"')
    run(shell, ".mode list")
    run(shell, '.separator ";"')
    out = run(shell, "SELECT 1 AS x, NULL AS y;")
    assert "x;y" in out and "1;(none)" in out
    out = run(shell, ".show")
    assert "mode: list" in out and 'nullvalue: "(none)"' in out and 'separator: ";"' in out
    out = run(shell, ".all time")
    assert "unix_time" in out and "weekday" in out
    assert "usage: .all TABLE" in run(shell, ".all")


def test_tab_completes_tables_and_meta_commands(shell):
    shell.send(".sch")
    shell.send("\t")
    time.sleep(0.3)
    shell.send(" listening_p")
    shell.send("\t")
    time.sleep(0.3)
    out = run(shell, "")
    assert ".schema listening_ports" in out and "socket" in out  # completed, then its columns described


def test_continuation_ctrl_c_and_ctrl_d(shell):
    shell.sendline("SELECT")
    shell.expect_exact("...>")
    shell.sendintr()  # Ctrl-C drops the statement being typed
    shell.expect_exact("streamq>")
    assert "| 7 |" in run(shell, "SELECT 7;")
    shell.expect_exact("streamq>")
    time.sleep(0.3)  # the prompt is drawn and reading keys
    shell.sendcontrol("d")  # Ctrl-D at an empty prompt leaves
    shell.expect(pexpect.EOF)
    shell.wait()
    assert shell.exitstatus == 0


# -- bash and zsh completion, in real shells under tmux -------------------------------------------


class Tmux:
    def __init__(self, command: str) -> None:
        self.name = f"streamq-test-{uuid.uuid4().hex[:8]}"
        env = f"env PATH={os.path.dirname(sys.executable)}:{os.environ['PATH']} HOME=/tmp TERM=xterm "
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "200", "-y", "50", env + command], check=True
        )

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def tmux(request):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    made: list[Tmux] = []
    request.addfinalizer(lambda: [t.kill() for t in made])

    def start(command: str) -> Tmux:
        made.append(Tmux(command))
        return made[-1]

    return start


def test_bash_completion_from_the_parser(tmux):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    session = tmux("bash --norc --noprofile")
    session.keys('PS1="$ "; eval "$(streamq completion bash)"; echo lo""aded', "Enter")
    assert retry(lambda: "loaded" in session.screen(), timeout=15)
    session.keys("streamq sche", "Tab")
    assert retry(lambda: "$ streamq schema" in session.screen(), timeout=10), session.screen()
    session.keys("listening_p", "Tab")
    assert retry(lambda: "streamq schema listening_ports" in session.screen(), timeout=15), session.screen()
    session.keys("C-u", "streamq run --log-level w", "Tab")
    assert retry(lambda: "--log-level warning" in session.screen(), timeout=10), session.screen()
    session.keys("C-u", "streamq completion z", "Tab")  # a positional's choices
    assert retry(lambda: "$ streamq completion zsh" in session.screen(), timeout=10), session.screen()


def test_zsh_completion_from_the_parser(tmux, tmp_path):
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed")
    script = subprocess.run([sys.executable, "-m", "streamq", "completion", "zsh"], capture_output=True, text=True)
    (tmp_path / "_streamq").write_text(script.stdout)
    session = tmux("zsh -f")
    session.keys(f"fpath=({tmp_path} $fpath); autoload -Uz compinit; compinit -u; PS1='%% '; echo loaded", "Enter")
    assert retry(lambda: "loaded" in session.screen(), timeout=15)
    time.sleep(0.2)
    session.keys("streamq comp", "Tab")
    assert retry(lambda: "% streamq completion" in session.screen(), timeout=10), session.screen()
    session.keys("C-u", "streamq run --log-l", "Tab")
    assert retry(lambda: "% streamq run --log-level" in session.screen(), timeout=10), session.screen()
    session.keys("w", "Tab")
    assert retry(lambda: "--log-level warning" in session.screen(), timeout=10), session.screen()
    session.keys("C-u", "streamq completion b", "Tab")  # a positional's choices
    assert retry(lambda: "% streamq completion bash" in session.screen(), timeout=10), session.screen()
