"""The Fleet page in headless Chromium: three daemons (a, b, c) on a private mosquitto, one serving the console.

A signed fleet query from the page reaches all three; each host's rows carry its
identifier; a host named but absent is listed as not answering.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from mqtt_broker import mosquitto  # noqa: F401  (the fixture)
from test_daemon_fleet import KEY, FleetDaemon
from web_console import browser, screenshot, wait_for  # noqa: F401

from conftest import retry

HOST_ROWS = "return Array.from(document.querySelectorAll('#fleet-hostlist li')).map(l => [l.className, l.textContent])"


@pytest.fixture(scope="module")
def fleet(mosquitto, request):  # noqa: F811
    root = Path(tempfile.mkdtemp(prefix="sqwebf"))
    started: list[FleetDaemon] = []

    def cleanup():
        for d in started:
            d.stop()
        shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(cleanup)
    from web_console import free_port

    port = free_port()
    started.append(FleetDaemon(root, "a", mosquitto.url, extra=f'[web]\nlisten = "127.0.0.1:{port}"\n'))
    started += [FleetDaemon(root, host, mosquitto.url) for host in "bc"]
    for d in started:
        d.wait_answering()
    from web_console import LINK

    match = retry(lambda: LINK.search(started[0].stderr()), timeout=10)
    assert match, started[0].stderr()
    return started, match.group(1)


def ask(driver, sql: str, hosts: str = "") -> list:
    driver.execute_script(
        "document.getElementById('fleet-sql').value = arguments[0];"
        "document.getElementById('fleet-hosts').value = arguments[1];"
        "document.getElementById('fleet-status').dataset.done = '';"
        "document.getElementById('fleet-run').click()",
        sql,
        hosts,
    )
    wait_for(driver, "return document.getElementById('fleet-status').dataset.done", timeout=20)
    return driver.execute_script(HOST_ROWS)


def test_a_fleet_query_from_the_page_shows_three_hosts(browser, fleet):  # noqa: F811
    daemons, link = fleet
    browser.get(link)
    wait_for(browser, "return document.body.dataset.ready")
    browser.execute_script("location.hash = 'fleet'")
    hosts = ask(browser, "SELECT host_identifier, pid, version FROM streamq_info")
    assert sorted(hosts) == [["good", "a: 1 row"], ["good", "b: 1 row"], ["good", "c: 1 row"]]
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#fleet-grid .visible .row')).map("
        "r => Array.from(r.children).map(c => c.textContent))"
    )
    assert sorted((r[0], r[1], r[2]) for r in rows) == sorted((d.host, d.host, str(d.proc.pid)) for d in daemons)
    assert "3 host(s) answered, 0 did not" in browser.execute_script(
        "return document.getElementById('fleet-status').textContent"
    )
    screenshot(browser, "fleet")


def test_a_named_host_that_does_not_answer_is_listed(browser, fleet):  # noqa: F811
    hosts = ask(browser, "SELECT host_identifier FROM streamq_info", "b, nobody")
    assert ["good", "b: 1 row"] in hosts
    assert ["missing", "nobody: no answer"] in hosts


def test_the_fleet_refuses_writes_and_the_page_shows_each_hosts_error(browser, fleet):  # noqa: F811
    hosts = ask(browser, "PRAGMA user_version = 7")
    assert sorted(c for c, _ in hosts) == ["bad", "bad", "bad"]
    assert all("PRAGMA user_version" in text for _, text in hosts)
    assert KEY  # the page signs with the daemon's [fleet] key: an unsigned request would be refused
