"""network_events from rtnetlink, against a veth pair and an address this test adds and removes."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import subprocess
import time

import pytest
from source_harness import running

from conftest import follow_while
from streamq.ring import Rings
from streamq.sources.network import NetworkSource, NetworkState

TAG = os.getpid() % 10000
LINK_A, LINK_B = f"sq{TAG}a", f"sq{TAG}b"
ADDRESS = f"10.254.{TAG % 250 + 1}.1"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@pytest.fixture
def veth_names(request):
    """The veth pair's names; the link is deleted at teardown whatever happened in between."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    request.addfinalizer(lambda: _ip("link", "del", LINK_A, check=False))
    _ip("link", "del", LINK_A, check=False)  # left over by an interrupted run
    probe = _ip("link", "add", LINK_A, "type", "veth", "peer", "name", LINK_B, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a veth pair: {probe.stderr.strip()}")
    _ip("link", "del", LINK_A)
    return LINK_A, LINK_B


def running_source():
    # "netlink": subscribed and the starting state dumped
    return running(NetworkSource("network_events", {}, Rings()), lambda s: s.status.mode == "netlink")


async def _wait_for(source, wanted, timeout: float = 5.0) -> list[dict]:
    """Rows about our link until every (action, ...) in ``wanted`` is among them."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for _, _, r in source.ring.since(0) if r.get("interface") in (LINK_A, LINK_B)]
        if all(any(w(r) for r in rows) for w in wanted) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.02)


async def test_veth_link_address_lifecycle(veth_names):
    a, b = veth_names
    async with running_source() as source:
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
        _ip("link", "set", a, "up")
        _ip("link", "set", b, "up")
        _ip("addr", "add", f"{ADDRESS}/24", "dev", a)
        want_up = [
            lambda r: r["action"] == "link_added" and r["interface"] == a,
            lambda r: r["action"] == "link_added" and r["interface"] == b,
            lambda r: r["action"] == "link_up" and r["interface"] == a,
            lambda r: r["action"] == "address_added" and r["address"] == ADDRESS,
        ]
        rows = await _wait_for(source, want_up)
        actions = [(r["action"], r["interface"]) for r in rows]
        assert ("link_added", a) in actions and ("link_added", b) in actions, actions
        assert ("link_up", a) in actions, actions
        assert actions.index(("link_added", a)) < actions.index(("link_up", a))
        added = [r for r in rows if r["action"] == "address_added" and r["address"] == ADDRESS]
        assert len(added) == 1, rows  # flag updates of the same address are not new rows
        assert (added[0]["interface"], added[0]["mask"], added[0]["family"]) == (a, "255.255.255.0", 2)
        # The prefix route the kernel adds with the address, as `ip route` shows it.
        shown = json.loads(_ip("-j", "route", "show", "dev", a).stdout)
        assert any(r["dst"] == str(ipaddress.ip_network(f"{ADDRESS}/24", strict=False)) for r in shown)
        assert any(
            r["action"] == "route_added" and r["destination"] == f"{ADDRESS.rsplit('.', 1)[0]}.0" for r in rows
        ), rows

        _ip("addr", "del", f"{ADDRESS}/24", "dev", a)
        _ip("link", "set", a, "down")
        _ip("link", "del", a)
        want_down = [
            lambda r: r["action"] == "address_removed" and r["address"] == ADDRESS,
            lambda r: r["action"] == "link_down" and r["interface"] == a,
            lambda r: r["action"] == "link_removed" and r["interface"] == a,
            lambda r: r["action"] == "link_removed" and r["interface"] == b,
        ]
        rows = await _wait_for(source, want_down)
        actions = [(r["action"], r["interface"]) for r in rows]
        for action, name in [("address_removed", a), ("link_down", a), ("link_removed", a), ("link_removed", b)]:
            assert (action, name) in actions, actions
        removed = next(r for r in rows if r["action"] == "address_removed")
        assert (removed["address"], removed["mask"]) == (ADDRESS, "255.255.255.0")
        assert actions.count(("link_removed", a)) == 1
        assert source.status.errors == 0


def test_sync_matches_ip_link():
    """The starting state is every link `ip -j link` lists, with its name."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    state = NetworkState()
    assert state.sync()  # from empty, every link is new
    links = json.loads(_ip("-j", "link").stdout)
    assert {link["ifindex"]: link["ifname"] for link in links} == {i: n for i, (n, _) in state.links.items()}
    assert state.sync() == []  # nothing changed: no rows


def test_cli_follow_link_added(veth_names, tmp_path):
    a, b = veth_names
    cfg = tmp_path / "streamq.toml"
    cfg.write_text("[sources.network]\nenabled = true\n")

    def trigger(done):
        while not done.is_set():  # until the CLI, once its source runs, sees one
            _ip("link", "add", a, "type", "veth", "peer", "name", b, check=False)
            done.wait(0.3)
            _ip("link", "del", a, check=False)

    sql = f"SELECT action, interface, family FROM network_events WHERE action = 'link_added' AND interface = '{a}'"
    rows = follow_while(trigger, cfg, sql, count=1, timeout=10)
    assert rows == [{"action": "link_added", "interface": a, "family": 0}]
