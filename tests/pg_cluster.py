"""A private PostgreSQL cluster for the tests: initdb in a tmp dir, its own port on 127.0.0.1.

The machine's own server (port 5432) is never touched. As root, the cluster runs as
the ``postgres`` user (PostgreSQL refuses to run as root); it is stopped with
``pg_ctl stop -m immediate`` and its directory removed in the fixture's finalizer.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from mqtt_broker import free_port


def pg_bin() -> str | None:
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(directory, "initdb")):
            return directory
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


@dataclass
class Cluster:
    bindir: str
    datadir: str
    port: int
    user: str | None  # run the server as this user (when we are root)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres connect_timeout=3"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [os.path.join(self.bindir, args[0]), *args[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
        )

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.datadir}"
        result = self._run("pg_ctl", "-D", self.datadir, "-l", f"{self.datadir}/log", "-o", options, "-w", "start")
        if result.returncode != 0:
            log_path = Path(self.datadir, "log")
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            pytest.fail(f"pg_ctl start failed: {result.stderr.strip()} {log[-500:]}")

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            self._run("pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []


def make_cluster() -> Cluster:
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'streamq[postgres]')")
    user = None
    top = tempfile.mkdtemp(prefix="streamq-pg-")
    datadir = os.path.join(top, "data")
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run a cluster as")
        user = "postgres"
        os.chmod(top, 0o755)
        os.makedirs(datadir, 0o700)
        os.chown(datadir, pw.pw_uid, pw.pw_gid)
    cluster = Cluster(bindir, datadir, free_port(), user)
    result = cluster._run("initdb", "-D", datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    if result.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        pytest.fail(f"initdb failed: {result.stderr.strip()[-500:]}")
    try:
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster


@pytest.fixture(scope="module", name="pg")
def pg_fixture(request) -> Cluster:
    holder: list[Cluster] = []
    request.addfinalizer(lambda: [c.remove() for c in holder])  # cleanup registered before the start
    holder.append(make_cluster())
    return holder[0]
