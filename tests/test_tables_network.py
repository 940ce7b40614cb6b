"""Network tables against ss, ip -j, getent, glibc and sockets the tests open themselves."""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest

from conftest import is_root, needs_root, retry


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=20).stdout


def _ip_json(*args: str) -> list[dict]:
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    return json.loads(_run("ip", "-j", *args))


def _own_netns() -> str:
    link = os.readlink("/proc/self/ns/net")
    return link[link.index("[") + 1 : -1]


def _comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


@pytest.fixture
def tcp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def udp_bound():
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::1", 0))
    yield sock
    sock.close()


@pytest.fixture
def tcp_pair():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    yield server, client, accepted
    for s in (client, accepted, server):
        s.close()


# ------------------------------------------------------------------ parsers on bytes


# ------------------------------------------------------------------ sockets on the live host


def test_own_tcp_listener_and_udp_socket(conn, tcp_listener, udp_bound):
    me = os.getpid()
    rows = conn.query("SELECT * FROM listening_ports WHERE pid = ?", (me,))
    tport = tcp_listener.getsockname()[1]
    uport = udp_bound.getsockname()[1]
    tcp = [r for r in rows if r["port"] == tport and r["protocol"] == 6]
    udp = [r for r in rows if r["port"] == uport and r["protocol"] == 17]
    assert len(tcp) == 1 and len(udp) == 1, rows
    assert tcp[0]["address"] == "0.0.0.0" and tcp[0]["family"] == 2
    assert tcp[0]["fd"] == tcp_listener.fileno()
    assert tcp[0]["socket"] == os.fstat(tcp_listener.fileno()).st_ino
    assert tcp[0]["net_namespace"] == _own_netns()
    assert tcp[0]["path"] is None
    assert udp[0]["address"] == "::1" and udp[0]["family"] == 10 and udp[0]["fd"] == udp_bound.fileno()


def test_unix_listener_has_path_and_port_zero(conn, tmp_path):
    path = str(tmp_path / "streamq-test.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(path)
        sock.listen()
        rows = conn.query("SELECT * FROM listening_ports WHERE path = ?", (path,))
        assert len(rows) == 1
        row = rows[0]
        assert (row["pid"], row["fd"], row["family"], row["port"], row["protocol"]) == (
            os.getpid(),
            sock.fileno(),
            1,
            0,
            0,
        )
        assert row["socket"] == os.fstat(sock.fileno()).st_ino


def test_listening_ports_matches_ss(conn, tcp_listener, udp_bound):
    if shutil.which("ss") is None:
        pytest.skip("iproute2's ss is not installed")

    def ss_set() -> set[tuple[int, int, str]]:
        found = set()
        for line in _run("ss", "-ltunH").splitlines():
            f = line.split()
            port = int(f[4].rsplit(":", 1)[1])
            found.add((port, 6 if f[0] == "tcp" else 17))
        return found

    # ss sees its own network namespace only; listening_ports sees every process's.
    own_netns = os.stat("/proc/self/ns/net").st_ino
    sql = f"SELECT port, protocol FROM listening_ports WHERE family IN (2, 10) AND net_namespace = {own_netns}"

    def compare():
        ours = {(r["port"], r["protocol"]) for r in conn.query(sql)}
        return ours == ss_set() and ours

    # Other processes may open or close sockets between the two reads: compare until both agree.
    assert retry(compare, timeout=5), (
        {
            (r["port"], r["protocol"])
            for r in conn.query("SELECT port, protocol FROM listening_ports WHERE family IN (2, 10)")
        },
        ss_set(),
    )


def test_seed_query_finds_own_listener(conn, tcp_listener):
    rows = conn.query(
        "SELECT DISTINCT process.name, listening.port, process.pid FROM processes AS process "
        "JOIN listening_ports AS listening ON process.pid = listening.pid WHERE listening.address = '0.0.0.0'"
    )
    assert {"name": _comm(), "port": tcp_listener.getsockname()[1], "pid": os.getpid()} in rows


def test_process_open_sockets_shows_both_ends_of_a_pair(conn, tcp_pair):
    server, client, accepted = tcp_pair
    me = os.getpid()
    rows = conn.query("SELECT * FROM process_open_sockets WHERE pid = ?", (me,))
    by_fd = {r["fd"]: r for r in rows}
    for sock in (client, accepted):
        row = by_fd[sock.fileno()]
        lhost, lport = sock.getsockname()
        rhost, rport = sock.getpeername()
        assert (row["local_address"], row["local_port"], row["remote_address"], row["remote_port"]) == (
            lhost,
            lport,
            rhost,
            rport,
        )
        assert (row["family"], row["protocol"], row["state"], row["pid"]) == (2, 6, "ESTABLISHED", me)
        assert row["socket"] == os.fstat(sock.fileno()).st_ino
    assert by_fd[server.fileno()]["state"] == "LISTEN"
    assert {r["pid"] for r in rows} == {me}  # the pid pushdown keeps other processes out
    # Unfiltered, the same sockets are there too.
    everything = conn.query("SELECT socket, pid FROM process_open_sockets WHERE protocol = 6")
    assert {(os.fstat(client.fileno()).st_ino, me)} <= {(r["socket"], r["pid"]) for r in everything}


def test_process_open_sockets_unix_pair(conn):
    a, b = socket.socketpair()
    with a, b:
        rows = conn.query(
            "SELECT fd, family, state, path FROM process_open_sockets WHERE pid = ? AND family = 1", (os.getpid(),)
        )
        fds = {r["fd"]: r for r in rows}
        assert fds[a.fileno()]["state"] == "CONNECTED" and fds[b.fileno()]["path"] is None


# ------------------------------------------------------------------ interfaces and routes vs ip -j


def test_interface_addresses_match_ip(conn):
    expected = set()
    for link in _ip_json("addr"):
        for a in link.get("addr_info", []):
            net = ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
            expected.add((a.get("label", link["ifname"]), a["local"], str(net.netmask)))
    rows = conn.query("SELECT interface, address, mask FROM interface_addresses")
    got = {(r["interface"], r["address"].split("%")[0], r["mask"]) for r in rows}
    assert got == expected
    for r in rows:
        if r["address"].startswith("fe80:"):
            assert r["address"].endswith("%" + r["interface"])


def test_interface_details_match_ip(conn):
    links = {link["ifname"]: link for link in _ip_json("-s", "link")}
    rows = {r["interface"]: r for r in conn.query("SELECT * FROM interface_details")}
    assert set(rows) == set(links)
    for name, link in links.items():
        row = rows[name]
        assert row["mtu"] == link["mtu"]
        assert row["mac"] == link.get("address")
        assert bool(row["flags"] & 0x1) == ("UP" in link["flags"])
        assert row["ibytes"] >= link["stats64"]["rx"]["bytes"]  # counters only grow


def test_routes_match_ip(conn):
    expected = set()
    for args in (("route", "show", "table", "all"), ("-6", "route", "show", "table", "all")):
        for r in _ip_json(*args):
            expected.add((r["dst"], r.get("dev")))
    got = set()
    for r in conn.query("SELECT destination, netmask, interface FROM routes"):
        full = 32 if ":" not in r["destination"] else 128
        if r["netmask"] == 0 and r["destination"] in ("0.0.0.0", "::"):
            dst = "default"
        elif r["netmask"] == full:
            dst = r["destination"]
        else:
            dst = f"{r['destination']}/{r['netmask']}"
        got.add((dst, r["interface"]))
    assert got == expected


def test_arp_cache_matches_ip_neigh(conn):
    expected = {(n["dst"], n["dev"]) for n in _ip_json("-4", "neigh") if "lladdr" in n}
    got = {
        (r["address"], r["interface"]) for r in conn.query("SELECT * FROM arp_cache WHERE mac <> '00:00:00:00:00:00'")
    }
    assert got == expected


# ------------------------------------------------------------------ /etc files vs getent and glibc


def _getent(db: str) -> list[list[str]]:
    if shutil.which("getent") is None:
        pytest.skip("getent is not installed")
    return [line.split() for line in _run("getent", db).splitlines() if line.strip()]


def test_etc_hosts_matches_getent(conn):
    expected = {(f[0], " ".join(f[1:])) for f in _getent("hosts")}
    got = {(r["address"], r["hostnames"]) for r in conn.query("SELECT * FROM etc_hosts")}
    assert got == expected
    pid_rows = conn.query(
        "SELECT address, pid_with_namespace FROM etc_hosts WHERE pid_with_namespace = ?", (os.getpid(),)
    )
    assert {r["pid_with_namespace"] for r in pid_rows} == {os.getpid()} and len(pid_rows) == len(got)


def test_etc_services_matches_getent(conn):
    expected = set()
    for f in _getent("services"):
        port, proto = f[1].split("/")
        expected.add((f[0], int(port), proto, " ".join(f[2:]) or None))
    got = {(r["name"], r["port"], r["protocol"], r["aliases"]) for r in conn.query("SELECT * FROM etc_services")}
    assert got == expected and len(got) > 10


def test_etc_protocols_matches_getent(conn):
    expected = {(f[0], int(f[1]), " ".join(f[2:]) or None) for f in _getent("protocols")}
    got = {(r["name"], r["number"], r["alias"]) for r in conn.query("SELECT * FROM etc_protocols")}
    assert got == expected and len(got) > 10


def test_dns_resolvers_match_glibc(conn):
    # glibc's own reading of resolv.conf: struct __res_state {int retrans, retry; unsigned long options;
    # int nscount; struct sockaddr_in nsaddr_list[3]; ...} on LP64.
    libc = ctypes.CDLL(None)
    if libc.__res_init() != 0:
        pytest.skip("res_init failed")
    libc.__res_state.restype = ctypes.c_void_p
    state = ctypes.string_at(libc.__res_state(), 72)
    options = int.from_bytes(state[8:16], "little")
    nscount = int.from_bytes(state[16:20], "little")
    v4 = []
    for i in range(nscount):
        sin = state[20 + 16 * i : 36 + 16 * i]
        if int.from_bytes(sin[:2], "little") == socket.AF_INET:
            v4.append(socket.inet_ntoa(sin[4:8]))
    rows = conn.query("SELECT * FROM dns_resolvers")
    ours = [r["address"] for r in rows if r["type"] == "nameserver" and ":" not in r["address"]]
    assert ours == v4
    if "RES_OPTIONS" not in os.environ and "LOCALDOMAIN" not in os.environ:
        assert {r["options"] for r in rows} <= {options}
        if rows:
            assert rows[0]["options"] == options


# ------------------------------------------------------------------ iptables vs iptables-legacy


@needs_root
def test_iptables_matches_iptables_legacy(conn):
    if shutil.which("iptables-legacy") is None:
        pytest.skip("iptables-legacy is not installed")
    chain = "SQ" + uuid.uuid4().hex[:10].upper()
    _run("iptables-legacy", "-N", chain)
    try:
        _run(
            "iptables-legacy", "-A", chain, "-p", "tcp", "-s", "198.51.100.0/24", "--dport", "2000:2100", "-j", "ACCEPT"
        )
        _run("iptables-legacy", "-A", chain, "-o", "eth+", "-j", "DROP")
        rows = conn.query("SELECT * FROM iptables WHERE filter_name = 'filter' AND chain = ?", (chain,))
        head = [r for r in rows if r["target"] is None]
        rules = [r for r in rows if r["target"] is not None]
        assert len(head) == 1 and head[0]["policy"] is None
        assert [
            (r["target"], r["protocol"], r["src_ip"], r["src_mask"], r["dst_port"], r["outiface"]) for r in rules
        ] == [
            ("ACCEPT", 6, "198.51.100.0", "255.255.255.0", "2000:2100", "all"),
            ("DROP", 0, "0.0.0.0", "0.0.0.0", None, "eth+"),
        ]
        # Built-in chains and their policies, as iptables-legacy-save prints them.
        saved = _run("iptables-legacy-save", "-t", "filter")
        policies = {line[1:].split()[0]: line.split()[1] for line in saved.splitlines() if line.startswith(":")}
        ours = {
            r["chain"]: r["policy"] or "-"
            for r in conn.query("SELECT * FROM iptables WHERE filter_name = 'filter' AND target IS NULL")
        }
        assert ours == policies
    finally:
        subprocess.run(["iptables-legacy", "-F", chain], capture_output=True)
        subprocess.run(["iptables-legacy", "-X", chain], capture_output=True)


def test_iptables_without_rights_or_tables_yields_rows_or_nothing(conn):
    rows = conn.query("SELECT filter_name, chain FROM iptables")
    try:
        with open("/proc/net/ip_tables_names") as f:
            names = f.read().split()
    except OSError:
        names = []
    assert {r["filter_name"] for r in rows} <= set(names)
    if is_root and names:
        assert {r["filter_name"] for r in rows} == set(names)


@needs_root
def test_listener_in_another_network_namespace(conn):
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    code = (
        "import socket,sys,time\n"
        "s=socket.socket(); s.bind(('0.0.0.0', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True); time.sleep(30)\n"
    )
    child = subprocess.Popen(["unshare", "-n", sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        if not line:
            pytest.skip("unshare -n is not permitted here")
        port = int(line)
        # unshare execs python in place, so the child's pid is the listener's pid.
        link = os.readlink(f"/proc/{child.pid}/ns/net")
        netns = link[link.index("[") + 1 : -1]
        assert netns != _own_netns()
        rows = conn.query("SELECT * FROM listening_ports WHERE port = ? AND protocol = 6", (port,))
        ours = [r for r in rows if r["net_namespace"] == netns]
        assert len(ours) == 1 and ours[0]["pid"] == child.pid and ours[0]["address"] == "0.0.0.0"
        pos = conn.query("SELECT net_namespace, state FROM process_open_sockets WHERE pid = ?", (child.pid,))
        assert {(r["net_namespace"], r["state"]) for r in pos} == {(netns, "LISTEN")}
    finally:
        child.kill()
        child.wait()


def test_listening_ports_owner_follows_a_socket_that_changes_fd(conn):
    # listening_ports remembers socket owners between queries; a remembered owner must be
    # re-checked, so a socket moved to another fd (or another process) is reported where it is now.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        first = conn.query("SELECT pid, fd FROM listening_ports WHERE port = ?", (port,))
        assert first == [{"pid": os.getpid(), "fd": listener.fileno()}]
        moved = os.dup(listener.fileno())
        listener.close()
        second = conn.query("SELECT pid, fd FROM listening_ports WHERE port = ?", (port,))
        assert second == [{"pid": os.getpid(), "fd": moved}]
        os.close(moved)
        assert conn.query("SELECT pid FROM listening_ports WHERE port = ?", (port,)) == []
    finally:
        listener.close()
