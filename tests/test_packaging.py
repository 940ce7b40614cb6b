"""Packaging: the wheel builds without warnings from the build backend and carries the default
config, the docs, the unit and the logrotate config; `pip install` and `pipx install` give a
working `streamq` on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # it makes setuptools warn
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
        cwd=out,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' scratch directory
    return next(out.glob("streamq-*.whl")), build.stdout + build.stderr


def test_build_backend_prints_no_warning(wheel):
    _, log = wheel
    # pip's own notes about this machine's index mirrors are not the backend's
    backend = [line for line in log.splitlines() if not line.startswith("WARNING: Location")]
    warnings = [line for line in backend if "warning" in line.lower() or "deprecat" in line.lower()]
    assert not warnings, warnings


def test_wheel_carries_config_docs_unit_and_logrotate(wheel):
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    data = f"streamq-{path.name.split('-')[1]}.data/data/share"
    for name in (
        "streamq/default.toml",
        "streamq/py.typed",
        f"{data}/doc/streamq/README.md",
        f"{data}/doc/streamq/sinks.md",
        f"{data}/doc/streamq/operating.md",
        f"{data}/doc/streamq/tables.md",
        f"{data}/streamq/streamq.service",
        f"{data}/streamq/streamq.toml",
        f"{data}/streamq/logrotate.d/streamq",
    ):
        assert name in names, name


def test_pip_install_puts_streamq_on_path(wheel, tmp_path):
    """The wheel into a fresh venv (its dependencies lent by the test venv through a .pth file)."""
    path, _ = wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = Path(subprocess.check_output([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())  # fmt: skip
    (purelib / "lent.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", str(path)],
        capture_output=True, text=True, timeout=300, env=_env(),
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    env = {**_env(), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    assert shutil.which("streamq", path=env["PATH"]) == str(venv / "bin" / "streamq")
    version = subprocess.run(["streamq", "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("streamq ")
    query = subprocess.run(["streamq", "query", "--csv", "SELECT 41 + 1 AS answer"], capture_output=True, text=True,
                           env=env, timeout=60, cwd=tmp_path)  # fmt: skip
    assert query.stdout == "answer\n42\n", query.stderr
    assert (venv / "share" / "doc" / "streamq" / "README.md").exists()
    check = subprocess.run([venv / "bin" / "python", "-m", "pip", "check"], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout


def test_pipx_install(tmp_path):
    pipx = shutil.which("pipx") or (str(Path(sys.executable).parent / "pipx"))
    if not os.path.exists(pipx):
        pytest.skip("pipx is not installed")
    env = {**_env(), "PIPX_HOME": str(tmp_path / "home"), "PIPX_BIN_DIR": str(tmp_path / "bin")}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run([pipx, "install", str(ROOT)], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [line for line in result.stderr.splitlines() if "deprecat" in line.lower()]
    streamq = tmp_path / "bin" / "streamq"
    out = subprocess.run([streamq, "query", "--json", "SELECT 'ok' AS installed"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)  # fmt: skip
    assert '"installed": "ok"' in out.stdout, out.stderr
    shutil.rmtree(ROOT / "build", ignore_errors=True)
