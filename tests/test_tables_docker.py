"""The docker_* tables against a private engine, compared with the docker CLI's own view.

The engine (tests/docker_engine.py) holds one image built with `docker import`,
a network and a volume with labels, and three containers: sq-web (labels, env,
a published port, a volume, a read-only bind mount; running sleep), sq-locked
(read-only rootfs, no-new-privileges, no network; running) and sq-done (exited).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

import pytest
from docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture

from conftest import ROOT
from streamq import QueryError
from streamq.errors import ConfigError
from streamq.host import dockerapi

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")


@pytest.fixture(scope="module")
def engine(docker_engine):  # noqa: F811 - the imported fixture
    dockerapi.configure(socket=docker_engine.socket)
    yield docker_engine
    dockerapi.configure()


def unix_seconds(text: str) -> int:
    """An RFC 3339 UTC time from the docker CLI, to the second."""
    return int(datetime.fromisoformat(text[:19]).replace(tzinfo=UTC).timestamp())


def inspect_all(engine) -> dict[str, dict]:
    return {d["Name"]: d for d in engine.json("inspect", *engine.containers.values())}


# -- no engine: no rows, one note, never a hang ------------------------------------------


def test_no_engine_gives_no_rows_and_one_warning(tmp_path):
    env = dict(os.environ, STREAMQ_DOCKER_SOCKET=str(tmp_path / "absent.sock"))
    sql = "SELECT (SELECT count(*) FROM docker_containers) AS c, (SELECT count(*) FROM docker_images) AS i"
    result = subprocess.run(
        [sys.executable, "-m", "streamq", "query", "--json", sql],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert '"c": 0' in result.stdout and '"i": 0' in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "absent.sock" in lines[0] and "docker_* tables return no rows" in lines[0]


def test_silent_engine_costs_one_short_timeout(conn, caplog):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "silent.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(8)  # connections complete in the backlog; nobody ever answers
        dockerapi.configure(socket=path, timeout=0.5)
        try:
            started = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="streamq.docker"):
                rows = conn.query("SELECT * FROM docker_containers, docker_info, docker_networks")
            elapsed = time.monotonic() - started
        finally:
            dockerapi.configure()
            server.close()
    assert rows == []
    assert elapsed < 3.0, f"a silent engine held the query {elapsed:.1f}s"
    warnings = [r.getMessage() for r in caplog.records if r.name == "streamq.docker"]
    assert len(warnings) == 1 and "timed out" in warnings[0], warnings


# -- containers ---------------------------------------------------------------------------


def test_containers_match_inspect_and_ps(engine, conn):
    rows = {r["name"]: r for r in conn.query("SELECT * FROM docker_containers")}
    ps = {"/" + c["Names"]: c for c in engine.json_lines("ps", "-a", "--no-trunc", "--format", "{{json .}}")}
    inspected = inspect_all(engine)
    assert sorted(rows) == sorted(ps) == sorted(inspected) == ["/sq-done", "/sq-locked", "/sq-web"]
    for name, d in inspected.items():
        row = rows[name]
        assert row["id"] == d["Id"] == engine.containers[name[1:]]
        assert row["image"] == d["Config"]["Image"] == ps[name]["Image"] == IMAGE
        assert row["image_id"] == d["Image"].removeprefix("sha256:") == engine.image_id
        assert row["command"] == ps[name]["Command"].strip('"')
        assert row["created"] == unix_seconds(d["Created"])
        assert row["state"] == d["State"]["Status"] == ps[name]["State"]
        assert row["status"].split()[0] == ps[name]["Status"].split()[0]  # Up / Exited
        assert row["pid"] == d["State"]["Pid"]
        assert row["path"] == d["Path"]
        assert row["config_entrypoint"] == ", ".join(d["Config"]["Entrypoint"] or ())
        assert row["started_at"] == d["State"]["StartedAt"]
        assert row["finished_at"] == d["State"]["FinishedAt"]
        assert row["privileged"] == int(d["HostConfig"]["Privileged"]) == 0
        assert row["security_options"] == ", ".join(d["HostConfig"]["SecurityOpt"] or ())
        assert row["env_variables"] == ", ".join(d["Config"]["Env"])
        assert row["readonly_rootfs"] == int(d["HostConfig"]["ReadonlyRootfs"])
        for kind in NAMESPACES:
            expected = None
            if d["State"]["Pid"]:
                expected = subprocess.check_output(["stat", "-Lc", "%i", f"/proc/{d['State']['Pid']}/ns/{kind}"])
                expected = expected.decode().strip()
            assert row[f"{kind}_namespace"] == expected, kind
    assert rows["/sq-locked"]["readonly_rootfs"] == 1
    assert rows["/sq-locked"]["security_options"] == "no-new-privileges"
    assert rows["/sq-done"]["state"] == "exited" and rows["/sq-done"]["pid"] == 0
    assert rows["/sq-web"]["net_namespace"] != rows["/sq-locked"]["net_namespace"]


def test_containers_found_by_id_prefix_and_name(engine, conn):
    full = engine.containers["sq-web"]
    rows = conn.query("SELECT id, name FROM docker_containers WHERE id = ?", (full[:12],))
    assert rows == [{"id": full[:12], "name": "/sq-web"}]  # osquery shows the prefix asked for
    rows = conn.query("SELECT id FROM docker_containers WHERE name = '/sq-locked'")
    assert rows == [{"id": engine.containers["sq-locked"]}]
    assert conn.query("SELECT id FROM docker_containers WHERE id = 'not-hex'") == []


def test_container_labels_and_envs_match_inspect(engine, conn):
    for d in inspect_all(engine).values():
        labels = conn.query("SELECT key, value FROM docker_container_labels WHERE id = ?", (d["Id"],))
        assert {r["key"]: r["value"] for r in labels} == d["Config"]["Labels"]
        envs = conn.query("SELECT key, value FROM docker_container_envs WHERE id = ?", (d["Id"],))
        assert [(r["key"], r["value"]) for r in envs] == [tuple(e.split("=", 1)) for e in d["Config"]["Env"]]
    web = engine.containers["sq-web"]
    labels = conn.query("SELECT key, value FROM docker_container_labels WHERE id = ? AND key = 'app'", (web,))
    assert labels == [{"key": "app", "value": "web"}]
    envs = conn.query("SELECT value FROM docker_container_envs WHERE id = ? AND key = 'GREETING'", (web,))
    assert envs == [{"value": "hello world"}]


def test_container_mounts_match_inspect_and_volume(engine, conn):
    web = engine.containers["sq-web"]
    rows = conn.query("SELECT * FROM docker_container_mounts WHERE id = ? ORDER BY destination", (web,))
    expected = sorted(inspect_all(engine)["/sq-web"]["Mounts"], key=lambda m: m["Destination"])
    assert [
        (r["type"], r["name"], r["source"], r["destination"], r["driver"], r["mode"], r["rw"], r["propagation"])
        for r in rows
    ] == [
        (
            m["Type"],
            m.get("Name"),
            m["Source"],
            m["Destination"],
            m.get("Driver"),
            m["Mode"],
            int(m["RW"]),
            m["Propagation"],
        )
        for m in expected
    ]
    bind, data = rows
    assert (bind["type"], bind["source"], bind["rw"]) == ("bind", str(engine.root / "bind"), 0)
    volume = engine.json("volume", "inspect", "sq-volume")[0]
    assert (data["type"], data["name"], data["source"]) == ("volume", "sq-volume", volume["Mountpoint"])


def test_container_networks_match_network_inspect(engine, conn):
    web = engine.containers["sq-web"]
    rows = conn.query("SELECT * FROM docker_container_networks WHERE id = ?", (web,))
    network = engine.json("network", "inspect", "sq-net")[0]
    endpoint = network["Containers"][web]
    assert len(rows) == 1
    row = rows[0]
    assert (row["name"], row["network_id"], row["endpoint_id"]) == ("sq-net", network["Id"], endpoint["EndpointID"])
    assert f"{row['ip_address']}/{row['ip_prefix_len']}" == endpoint["IPv4Address"]
    assert row["mac_address"] == endpoint["MacAddress"]
    assert row["gateway"] == network["IPAM"]["Config"][0]["Gateway"]
    locked = conn.query("SELECT name FROM docker_container_networks WHERE id = ?", (engine.containers["sq-locked"],))
    assert locked == [{"name": "none"}]


def test_container_ports_match_docker_port(engine, conn):
    web = engine.containers["sq-web"]
    rows = conn.query("SELECT type, port, host_ip, host_port FROM docker_container_ports WHERE id = ?", (web,))
    expected = []
    for line in engine.docker("port", "sq-web").splitlines():  # 80/tcp -> 127.0.0.1:18080
        inside, _, outside = line.partition(" -> ")
        port, proto = inside.split("/")
        host, _, host_port = outside.rpartition(":")
        expected.append({"type": proto, "port": int(port), "host_ip": host, "host_port": int(host_port)})
    assert rows == expected == [{"type": "tcp", "port": 80, "host_ip": "127.0.0.1", "host_port": 18080}]


def test_container_processes_match_docker_top_and_ps(engine, conn):
    web = engine.containers["sq-web"]
    rows = conn.query("SELECT * FROM docker_container_processes WHERE id = ?", (web[:12],))
    lines = engine.docker("top", "sq-web", "-o", "pid,ppid,uid,nlwp,args").splitlines()[1:]  # a table
    expected = {int(f[0]): f for f in (line.split(None, 4) for line in lines)}
    assert {r["pid"] for r in rows} == set(expected) and rows
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    for row in rows:
        _, ppid, uid, nlwp, args = expected[row["pid"]]
        assert row["id"] == web[:12]
        assert (row["parent"], row["uid"], row["threads"], row["cmdline"]) == (int(ppid), int(uid), int(nlwp), args)
        ps = subprocess.check_output(["ps", "-o", "comm=,rss=,etimes=", "-p", str(row["pid"])], text=True).split()
        assert row["name"] == ps[0] == "sleep"
        assert abs(row["resident_size"] - int(ps[1]) * 1024) <= 64 * 1024
        assert abs(row["start_time"] - (uptime - int(ps[2]))) <= 2
    with pytest.raises(QueryError, match="id"):
        conn.query("SELECT * FROM docker_container_processes")


def test_container_fs_changes_match_docker_diff(engine, conn):
    web = engine.containers["sq-web"]
    rows = conn.query("SELECT change_type, path FROM docker_container_fs_changes WHERE id = ?", (web,))
    expected = {tuple(line.split(" ", 1)) for line in engine.docker("diff", "sq-web").splitlines()}
    assert {(r["change_type"], r["path"]) for r in rows} == expected
    assert ("A", "/tmp/made-here") in expected


def _cpu_usage_ns(pid: int) -> int:
    """The container's CPU time from its cgroup, as the kernel counts it."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in lines:
        if "cpuacct" in controllers.split(","):
            mount = next(m for m in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu") if os.path.isdir(f"/sys/fs/cgroup/{m}"))
            with open(f"/sys/fs/cgroup/{mount}{path}/cpuacct.usage") as f:
                return int(f.read())
    path = next(p for h, c, p in lines if h == "0")
    with open(f"/sys/fs/cgroup{path}/cpu.stat") as f:
        return int(next(line.split()[1] for line in f if line.startswith("usage_usec"))) * 1000


def test_container_stats_match_cgroup_and_docker_stats(engine, conn):
    web = engine.containers["sq-web"]
    pid = inspect_all(engine)["/sq-web"]["State"]["Pid"]
    before = _cpu_usage_ns(pid)
    rows = conn.query("SELECT * FROM docker_container_stats WHERE id = ?", (web,))
    after = _cpu_usage_ns(pid)
    cli = engine.json_lines("stats", "--no-stream", "--format", "{{json .}}", "sq-web")[0]
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == "/" + cli["Name"] == "/sq-web"
    assert row["pids"] == int(cli["PIDs"]) == 1
    assert before <= row["cpu_total_usage"] <= after
    assert row["pre_cpu_total_usage"] <= row["cpu_total_usage"]
    assert 0.2e9 <= row["interval"] <= 5e9 and 0 <= row["read"] - row["preread"] <= 5
    assert abs(row["read"] - time.time()) < 30
    assert row["memory_usage"] > 0 and row["memory_limit"] >= row["memory_usage"]
    assert row["online_cpus"] == os.cpu_count()


# -- images, engine, networks, volumes ---------------------------------------------------


def test_images_match_docker_images_and_inspect(engine, conn):
    rows = conn.query("SELECT * FROM docker_images")
    listed = engine.json_lines("images", "--no-trunc", "--format", "{{json .}}")
    image = engine.json("image", "inspect", IMAGE)[0]
    assert len(rows) == len(listed) == 1
    row = rows[0]
    assert row["id"] == listed[0]["ID"].removeprefix("sha256:") == image["Id"].removeprefix("sha256:")
    assert row["tags"] == f"{listed[0]['Repository']}:{listed[0]['Tag']}" == IMAGE
    assert row["size_bytes"] == image["Size"]
    assert row["created"] == unix_seconds(image["Created"])
    labels = conn.query("SELECT key, value FROM docker_image_labels WHERE id = ?", (row["id"][:12],))
    assert {r["key"]: r["value"] for r in labels} == image["Config"]["Labels"] == {"org.streamq.test": "image"}
    layers = conn.query("SELECT layer_id, layer_order FROM docker_image_layers ORDER BY layer_order")
    assert [r["layer_id"] for r in layers] == [x.removeprefix("sha256:") for x in image["RootFS"]["Layers"]]
    assert [r["layer_order"] for r in layers] == list(range(1, len(layers) + 1))


def test_image_history_matches_docker_history(engine, conn):
    rows = conn.query("SELECT * FROM docker_image_history WHERE id = ?", (engine.image_id,))
    steps = engine.json_lines("history", "--no-trunc", "--human=false", "--format", "{{json .}}", IMAGE)
    assert len(rows) == len(steps) >= 1
    for row, step in zip(rows, steps):
        assert row["id"] == engine.image_id
        assert row["created_by"] == step["CreatedBy"]
        assert row["comment"] == step["Comment"] == "streamq test image"
        assert row["size"] == int(step["Size"])
        assert row["created"] == unix_seconds(step["CreatedAt"])
    assert rows[0]["tags"] == IMAGE


def test_info_and_version_match_the_cli(engine, conn):
    (info,) = conn.query("SELECT * FROM docker_info")
    cli = engine.json("info", "--format", "{{json .}}")
    assert info["id"] == cli["ID"] and info["name"] == cli["Name"]
    assert (info["containers"], info["containers_running"], info["containers_stopped"]) == (3, 2, 1)
    assert info["containers"] == cli["Containers"] and info["containers_running"] == cli["ContainersRunning"]
    assert info["images"] == cli["Images"] == 1
    assert info["root_dir"] == cli["DockerRootDir"] == str(engine.root / "data")
    assert info["storage_driver"] == cli["Driver"] and info["cgroup_driver"] == cli["CgroupDriver"]
    assert info["server_version"] == cli["ServerVersion"] and info["memory"] == cli["MemTotal"]
    assert info["cpus"] == cli["NCPU"] and info["kernel_version"] == cli["KernelVersion"]
    assert info["memory_limit"] == int(cli["MemoryLimit"]) and info["ipv4_forwarding"] == int(cli["IPv4Forwarding"])
    (version,) = conn.query("SELECT * FROM docker_version")
    server = engine.json("version", "--format", "{{json .Server}}")
    assert version["version"] == server["Version"] == info["server_version"]
    assert version["api_version"] == server["ApiVersion"] and version["min_api_version"] == server["MinAPIVersion"]
    assert version["git_commit"] == server["GitCommit"] and version["go_version"] == server["GoVersion"]
    assert (version["os"], version["arch"]) == (server["Os"], server["Arch"])


def test_networks_match_network_ls_and_inspect(engine, conn):
    rows = {r["name"]: r for r in conn.query("SELECT * FROM docker_networks")}
    listed = {n["Name"]: n for n in engine.json_lines("network", "ls", "--no-trunc", "--format", "{{json .}}")}
    assert sorted(rows) == sorted(listed)
    for name, n in listed.items():
        assert (rows[name]["id"], rows[name]["driver"]) == (n["ID"], n["Driver"])
    net = engine.json("network", "inspect", "sq-net")[0]
    row = rows["sq-net"]
    assert row["created"] == unix_seconds(net["Created"]) and row["enable_ipv6"] == int(net["EnableIPv6"])
    assert (row["subnet"], row["gateway"]) == (net["IPAM"]["Config"][0]["Subnet"], net["IPAM"]["Config"][0]["Gateway"])
    labels = conn.query("SELECT id, key, value FROM docker_network_labels WHERE id = ?", (net["Id"][:10],))
    assert {r["key"]: r["value"] for r in labels} == net["Labels"] == {"team": "blue", "tier": "test"}
    assert {r["id"] for r in labels} == {net["Id"][:10]}


def test_volumes_match_volume_ls_and_inspect(engine, conn):
    rows = conn.query("SELECT * FROM docker_volumes")
    listed = engine.json_lines("volume", "ls", "--format", "{{json .}}")
    assert sorted(r["name"] for r in rows) == sorted(v["Name"] for v in listed) == ["sq-volume"]
    volume = engine.json("volume", "inspect", "sq-volume")[0]
    assert rows[0]["driver"] == volume["Driver"] and rows[0]["mount_point"] == volume["Mountpoint"]
    assert rows[0]["type"] == (volume.get("Options") or {}).get("type")
    labels = conn.query("SELECT key, value FROM docker_volume_labels WHERE name = 'sq-volume'")
    assert {r["key"]: r["value"] for r in labels} == volume["Labels"] == {"keep": "no", "owner": "streamq"}
    assert conn.query("SELECT * FROM docker_volume_labels WHERE name = 'sq-vol'") == []


# -- the [docker] config section ----------------------------------------------------------


def test_docker_section_sets_the_socket_and_timeout(tmp_path):
    from streamq.config import loader
    from streamq.daemon.app import configure_tables

    config = loader.parse(f'[docker]\nsocket = "{tmp_path}/engine.sock"\ntimeout = "2s"\n', "streamq.toml")
    try:
        configure_tables(config)
        assert dockerapi.socket_path() == f"{tmp_path}/engine.sock"
        assert config.docker.timeout == 2.0
        configure_tables(loader.parse("", "empty.toml"))  # no section: the environment, else Docker's default
        assert dockerapi.socket_path() == os.environ.get(dockerapi.SOCKET_ENV, dockerapi.DEFAULT_SOCKET)
    finally:
        dockerapi.configure()
    with pytest.raises(ConfigError, match=r"docker.*timeout"):
        loader.parse('[docker]\ntimeout = "soon"\n', "streamq.toml")
