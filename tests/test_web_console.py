"""The web console in a real browser: headless Chromium against a daemon started with [web] listen.

What a person would check: the printed link logs in and a wrong token does not; a query
shows the rows `streamq query --json` prints; a bad query shows its error in place; the
deadline and the row cap are shown as such; a listener opened here appears on the Live
page within a second; the Schedule page shows a sink's delivered count rising;
cross-origin requests without the CSRF token are refused; and, last, every request the
browser made went to this host. Screenshots of each page are kept (see web_console.py).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from web_console import WebDaemon, browser, requested_urls, screenshot, wait_for  # noqa: F401

from conftest import query_json, retry, run_cli

FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
TEN_MILLION = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10000000) SELECT n FROM r"
CONFIG = """
[sources.socket]
[sources.jsonl.app]
path = "{root}/app.jsonl"
time = "ts"
poll_interval = "20ms"
columns = {{ status = "INTEGER", user = "TEXT" }}
[sinks.out]
type = "file"
path = "{root}/out.jsonl"
[queries.clock]
sql = "SELECT unix_time FROM time"
interval = 1
"""
VISIBLE_ROWS = """
return Array.from(document.querySelectorAll(arguments[0] + ' .visible .row')).map(
  r => Array.from(r.children).map(c => c.classList.contains('null') ? null : c.textContent))
"""


@pytest.fixture(scope="module")
def console(request):
    root = Path(tempfile.mkdtemp(prefix="sqweb"))  # short: the control socket's path must fit 108 bytes
    (root / "app.jsonl").touch()
    daemon = WebDaemon(root, CONFIG.format(root=root), web='deadline = "1s"')
    daemon.records = root / "app.jsonl"

    def cleanup():
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(cleanup)
    daemon.link = daemon.wait_running()
    return daemon


@pytest.fixture(scope="module")
def page(browser, console):  # noqa: F811
    browser.get(console.link)
    wait_for(browser, "return document.body.dataset.ready")
    return browser


def show(driver, name: str) -> None:
    driver.execute_script("location.hash = arguments[0]", name)
    wait_for(driver, f"return !document.getElementById('page-{name}').hidden")


def run_query(driver, sql: str, timeout: float = 20.0) -> None:
    """Type ``sql`` in the Query page's editor and press Ctrl+Enter; wait for rows or an error."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    show(driver, "query")
    driver.execute_script(
        "document.getElementById('query-status').textContent = '';"
        "document.getElementById('query-status').dataset.rows = '';"
        "document.getElementById('query-error').hidden = true;"
        "document.getElementById('query-sql').value = arguments[0];",
        sql,
    )
    editor = driver.find_element(By.ID, "query-sql")
    editor.send_keys(Keys.END)
    editor.send_keys(Keys.CONTROL, Keys.ENTER)
    wait_for(
        driver,
        "return document.getElementById('query-status').dataset.rows || !document.getElementById('query-error').hidden",
        timeout,
    )


def rows_shown(driver) -> int:
    return int(driver.execute_script("return document.getElementById('query-status').dataset.rows"))


def error_text(driver) -> str:
    return driver.execute_script("return document.getElementById('query-error').textContent")


def test_the_printed_link_logs_in_and_a_wrong_token_does_not(browser, console):  # noqa: F811
    browser.get(f"{console.origin}/?token=not-the-token")
    assert "Wrong token" in browser.title
    assert not [c for c in browser.get_cookies() if c["name"] == "streamq_session"]
    browser.get(f"{console.origin}/")
    assert "Log in" in browser.title  # no session: the login page, not the console
    browser.get(console.link)
    assert wait_for(browser, "return document.body.dataset.ready")
    assert "token=" not in browser.current_url  # the token leaves the address bar
    cookie = next(c for c in browser.get_cookies() if c["name"] == "streamq_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: scripts cannot read it


def test_a_query_shows_the_rows_streamq_query_prints(page):
    sql = "SELECT name, port, protocol, aliases FROM etc_services ORDER BY port, protocol, name"
    truth = [[None if v is None else str(v) for v in r.values()] for r in query_json(sql)]
    assert len(truth) > 100  # more rows than the page shows at once: the grid is virtualised
    run_query(page, sql)
    assert rows_shown(page) == len(truth)
    # The grid draws on the next animation frame after the count is shown.
    first = retry(lambda: (rows := page.execute_script(VISIBLE_ROWS, "#query-grid")) and rows[0] == truth[0] and rows)
    assert 10 < len(first) < len(truth), "only the rows in view (and a margin) are in the page"
    assert first == truth[: len(first)]
    page.execute_script("document.querySelector('#query-grid .viewport').scrollTop = 1e9")
    assert retry(lambda: page.execute_script(VISIBLE_ROWS, "#query-grid")[-1] == truth[-1], timeout=5)


def test_rows_sort_and_filter_and_null_is_shown_as_null(page):
    sql = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) "
        "SELECT n, CASE WHEN n % 3 = 0 THEN NULL ELSE 'v' || n END AS label FROM r"
    )
    run_query(page, sql)
    assert rows_shown(page) == 1000
    assert retry(lambda: page.execute_script(VISIBLE_ROWS, "#query-grid")[2] == ["3", None])  # drawn next frame
    assert page.execute_script("return document.querySelector('#query-grid .cell.null').textContent") == "NULL"
    header = "document.querySelectorAll('#query-grid .row.head .cell')[0]"
    page.execute_script(f"{header}.click()")
    page.execute_script(f"{header}.click()")  # twice: descending
    assert retry(lambda: page.execute_script(VISIBLE_ROWS, "#query-grid")[0] == ["1000", "v1000"])
    page.execute_script(
        "const f = document.getElementById('query-filter'); f.value = 'v99'; f.dispatchEvent(new Event('input'))"
    )
    wanted = [[str(n), f"v{n}"] for n in sorted((n for n in range(1, 1001) if str(n).startswith("99")), reverse=True)]
    wanted = [w for w in wanted if int(w[0]) % 3]
    assert retry(lambda: page.execute_script(VISIBLE_ROWS, "#query-grid") == wanted)
    assert f"{len(wanted)} of 1,000 rows" in page.execute_script(
        "return document.getElementById('query-status').textContent"
    )
    page.execute_script(
        "const f = document.getElementById('query-filter'); f.value = ''; f.dispatchEvent(new Event('input'))"
    )


def test_a_bad_query_shows_its_error_where_sqlite_places_it(page):
    run_query(page, "SELECT 1 AS earlier UNION ALL SELECT 2")
    assert retry(lambda: page.execute_script(VISIBLE_ROWS, "#query-grid") == [["1"], ["2"]])
    run_query(page, "SELECT pid,\n  nosuch_column FROM processes")
    # The earlier rows are not this query's answer: they go.
    assert retry(lambda: page.execute_script(VISIBLE_ROWS, "#query-grid") == [])
    text = error_text(page)
    assert "no such column: nosuch_column" in text
    assert "line 2, column 3" in text
    caret = page.execute_script("const t = document.getElementById('query-sql'); return t.selectionStart")
    assert caret == len("SELECT pid,\n  ")


def test_a_query_that_never_ends_is_stopped_at_the_deadline_and_shown_so(page):
    started = time.monotonic()
    run_query(page, FOREVER)
    assert time.monotonic() - started < 10
    assert "Deadline reached" in error_text(page)
    assert "1s deadline" in error_text(page)
    assert "deadline" in page.execute_script("return document.getElementById('query-error').className")


def test_ten_million_rows_stop_at_the_row_cap_and_say_truncated(page):
    run_query(page, TEN_MILLION, timeout=60)
    assert rows_shown(page) == 100_000
    status = page.execute_script("return document.getElementById('query-status').textContent")
    assert "truncated" in status and "100,000 rows" in status
    page.execute_script("document.querySelector('#query-grid .viewport').scrollTop = 24 * 50000")
    assert retry(lambda: ["50001"] in page.execute_script(VISIBLE_ROWS, "#query-grid"), timeout=5)


def test_completion_of_tables_and_columns_and_ctrl_enter_runs(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    show(page, "query")
    editor = page.find_element(By.ID, "query-sql")
    page.execute_script("document.getElementById('query-sql').value = ''")
    editor.send_keys("SELECT * FROM streamq_inf")
    items = wait_for(
        page, "return Array.from(document.querySelectorAll('#page-query .completions li')).map(l => l.textContent)"
    )
    assert "streamq_info" in items
    editor.send_keys(Keys.TAB)
    assert editor.get_attribute("value") == "SELECT * FROM streamq_info"
    page.execute_script("document.getElementById('query-sql').value = 'SELECT host_ FROM streamq_info'")
    page.execute_script("document.getElementById('query-sql').setSelectionRange(12, 12)")
    editor.send_keys("i")
    items = wait_for(
        page, "return Array.from(document.querySelectorAll('#page-query .completions li')).map(l => l.textContent)"
    )
    assert items[0] == "host_identifier"  # a column of the table the statement names comes first
    editor.send_keys(Keys.ENTER)
    assert editor.get_attribute("value") == "SELECT host_identifier FROM streamq_info"
    page.execute_script("document.getElementById('query-status').dataset.rows = ''")
    editor.send_keys(Keys.CONTROL, Keys.ENTER)
    assert wait_for(page, "return document.getElementById('query-status').dataset.rows") == "1"


def test_the_history_is_kept_in_the_browser(page):
    run_query(page, "SELECT 'remembered' AS word")
    page.refresh()
    wait_for(page, "return document.body.dataset.ready")
    entries = page.execute_script(
        "return Array.from(document.querySelectorAll('#query-history code')).map(c => c.textContent)"
    )
    assert entries[0] == "SELECT 'remembered' AS word"
    assert "SELECT pid,\n  nosuch_column FROM processes" not in entries  # only queries that ran
    page.execute_script("document.getElementById('query-sql').value = ''")
    page.execute_script("document.querySelector('#query-history li').click()")
    assert page.execute_script("return document.getElementById('query-sql').value") == "SELECT 'remembered' AS word"


def test_csv_and_json_downloads_hold_the_rows(page):
    import json

    run_query(page, "SELECT 1 AS n, 'a,b' AS text, NULL AS empty UNION ALL SELECT 2, 'say \"hi\"', 3")
    # The files the buttons hand to the browser's download (headless Chromium saves none).
    page.execute_script(
        "window.downloads = []; const make = URL.createObjectURL;"
        "URL.createObjectURL = (blob) => { window.downloads.push(blob); return make(blob); };"
    )
    page.execute_script("document.getElementById('query-csv').click(); document.getElementById('query-json').click()")
    texts = page.execute_async_script(
        "const done = arguments[0]; Promise.all(window.downloads.map(b => b.text())).then(done)"
    )
    assert texts[0] == 'n,text,empty\r\n1,"a,b",\r\n2,"say ""hi""",3\r\n'
    assert json.loads(texts[1]) == [
        {"n": 1, "text": "a,b", "empty": None},
        {"n": 2, "text": 'say "hi"', "empty": 3},
    ]


def test_the_tables_page_runs_an_example_with_one_click(page):
    show(page, "tables")
    wait_for(page, "return document.querySelectorAll('#tables-list details').length > 50")
    page.execute_script(
        "const f = document.getElementById('tables-filter'); f.value = 'streamq_sinks'; f.dispatchEvent(new Event('input'))"
    )
    page.execute_script("document.getElementById('table-streamq_sinks').open = true")
    screenshot(page, "tables")
    page.execute_script("document.querySelector('#table-streamq_sinks .example button').click()")
    wait_for(page, "return !document.getElementById('page-query').hidden")
    assert wait_for(page, "return document.getElementById('query-status').dataset.rows") == "1"
    assert page.execute_script("return document.getElementById('query-sql').value").startswith("SELECT name, sent")
    run_query(page, "SELECT pid, name, uid, resident_size FROM processes ORDER BY resident_size DESC")
    screenshot(page, "query")


def test_a_new_listener_appears_on_the_live_page_within_a_second(page):
    show(page, "live")
    page.execute_script(
        "document.getElementById('live-sql').value = arguments[0]",
        "SELECT action, pid, local_address, local_port, family, path FROM socket_events WHERE action = 'listen'",
    )
    page.execute_script("document.getElementById('live-start').click()")
    wait_for(page, "return document.getElementById('live-status').textContent.startsWith('following')")
    listeners = []
    try:
        seen = {}
        for _ in range(3):
            sock = socket.create_server(("127.0.0.1", 0))
            listeners.append(sock)
            port = str(sock.getsockname()[1])
            opened = time.monotonic()
            script = f"return Array.from(document.querySelectorAll('#live-grid .visible .cell')).some(c => c.textContent === '{port}')"
            assert wait_for(page, script, timeout=5), f"listener on {port} never appeared"
            seen[port] = time.monotonic() - opened
        assert max(seen.values()) < 1.0, f"seconds from listen() to the row on the page: {seen}"
        screenshot(page, "live")
    finally:
        for sock in listeners:
            sock.close()
        page.execute_script("document.getElementById('live-stop').click()")


T0 = 1_700_000_000  # a multiple of 10: the test's 10 s windows start here
COUNT_BY_STATUS = "SELECT status, count(*) AS n FROM app_events GROUP BY status"
LIVE_FIELDS = {"window": "live-window", "window_key": "live-window-key", "emit": "live-emit", "grace": "live-grace"}
LIVE_FIELDS |= {"dedup": "live-dedup", "limit": "live-limit"}


def app_records(start: int, n: int) -> list[dict]:
    """Records 0.4 s apart from T0 (25 to a 10 s window), three statuses in an uneven mix."""
    return [{"ts": T0 + i * 0.4, "status": (200, 200, 404, 500, 200)[i * 7 % 5]} for i in range(start, start + n)]


def append_records(path: Path, records: list[dict]) -> None:
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def window_rows(records: list[dict], *, open_from: int | None = None) -> list[list[str]]:
    """The ground truth as the Live page shows it: status, n, window_start, window_end, result, in
    window then status order; windows starting at ``open_from`` or later are still open (updates)."""
    counts = Counter((int(r["ts"] // 10 * 10), r["status"]) for r in records)
    return [
        [str(status), str(n), str(start), str(start + 10), "update" if open_from and start >= open_from else "final"]
        for (start, status), n in sorted(counts.items())
    ]


def follow_live(driver, sql: str, **options: str) -> None:
    """Fill the Live page's editor and streaming fields (the others emptied) and press Follow."""
    show(driver, "live")
    values = {field: options.get(name, "") for name, field in LIVE_FIELDS.items()}
    driver.execute_script(
        "document.getElementById('live-sql').value = arguments[0];"
        "for (const [id, value] of Object.entries(arguments[1])) document.getElementById(id).value = value;"
        "document.getElementById('live-error').textContent = '';"
        "document.getElementById('live-status').textContent = '';"
        "document.getElementById('live-start').click()",
        sql,
        values,
    )


def test_a_tumbling_window_count_updates_in_place_then_is_marked_final(page, console):
    follow_live(page, COUNT_BY_STATUS, window="tumble 10s", emit="changes")
    status = wait_for(
        page, "const s = document.getElementById('live-status').textContent; return s.startsWith('following') && s"
    )
    assert status == "following app_events, tumble 10s, emitting changes", status
    shown = lambda: page.execute_script(VISIBLE_ROWS, "#live-grid")  # noqa: E731
    written: list[dict] = []
    try:
        for records in (app_records(0, 10), app_records(10, 10)):  # both in the first window: it stays open
            append_records(console.records, records)
            written += records
            expected = window_rows(written, open_from=T0)
            assert retry(lambda e=expected: shown() == e, timeout=10), shown()
        rest = app_records(20, 50)  # to 27.6 s: the first two windows close, the third stays open
        append_records(console.records, rest)
        written += rest
        assert retry(lambda: shown() == window_rows(written, open_from=T0 + 20), timeout=10), shown()
        screenshot(page, "live-windows")
    finally:
        page.execute_script("document.getElementById('live-stop').click()")  # the end of input: flush
    assert retry(lambda: shown() == window_rows(written), timeout=10), shown()
    final_rows = page.execute_script("return document.querySelectorAll('#live-grid .visible .row.final').length")
    assert final_rows == len(window_rows(written))  # every row marked final, each (window, status) once
    assert page.execute_script("return document.getElementById('live-count').dataset.final") == str(final_rows)
    assert retry(
        lambda: (
            page.execute_script("return document.getElementById('live-status').textContent")
            == "ended: open windows were emitted, final"
        )
    )


def sessions(records: list[dict], gap: float) -> list[list[str]]:
    """Session windows per user by plain Python: times closer than ``gap`` join, [first, last + gap)."""
    out = []
    for user in sorted({r["user"] for r in records}):
        times = sorted(r["ts"] for r in records if r["user"] == user)
        start, last, n = times[0], times[0], 0
        for t in times:
            if t >= last + gap:
                out.append((user, start, last + gap, n))
                start, n = t, 0
            last, n = t, n + 1
        out.append((user, start, last + gap, n))
    text = lambda t: str(int(t)) if t == int(t) else str(t)  # noqa: E731  (as the page prints a number)
    return sorted([u, str(n), text(a), text(b)] for u, a, b, n in out)


def test_session_windows_that_merge_replace_both_rows_with_one(page, console):
    sql = "SELECT user, count(*) AS n FROM app_events GROUP BY user"
    follow_live(page, sql, window="session 2s", window_key="user", emit="changes", grace="5s")
    wait_for(page, "return document.getElementById('live-status').textContent.startsWith('following')")
    base = T0 + 5000
    shown = lambda: sorted(row[:4] for row in page.execute_script(VISIBLE_ROWS, "#live-grid"))  # noqa: E731
    kinds = lambda: sorted(row[4] for row in page.execute_script(VISIBLE_ROWS, "#live-grid"))  # noqa: E731
    written: list[dict] = []
    try:
        # a: two sessions 3 s apart; then a record between them merges them into one; b alone.
        steps = [[(10, "a"), (13, "a"), (13, "b")], [(11.5, "a")], [(40, "c")]]
        for step in steps:
            records = [{"ts": base + t, "user": user, "status": 200} for t, user in step]
            append_records(console.records, records)
            written += records
            expected = sessions(written, 2)
            assert retry(lambda e=expected: shown() == e, timeout=10), (shown(), expected)
        assert kinds() == ["final", "final", "update"]  # c's session is still open
    finally:
        page.execute_script("document.getElementById('live-stop').click()")
    assert retry(lambda: kinds() == ["final"] * 3, timeout=10)
    assert shown() == sessions(written, 2)


@pytest.mark.parametrize(
    ("options", "sql"),
    [
        ({"window": "tumbel 10s"}, COUNT_BY_STATUS),
        ({"window": "hop 1m every 5m"}, COUNT_BY_STATUS),
        ({"window": "tumble 1m", "window_key": "status"}, COUNT_BY_STATUS),
        ({}, COUNT_BY_STATUS),
    ],
)
def test_a_bad_window_form_shows_query_follows_error_in_place(page, tmp_path, options, sql):
    follow_live(page, sql, **options)
    error = wait_for(page, "const e = document.getElementById('live-error'); return !e.hidden && e.textContent")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[sources.jsonl.app]\npath = "{tmp_path}/a.jsonl"\ntime = "ts"\n'
        'columns = { status = "INTEGER", user = "TEXT" }\n'
    )
    flags = [arg for name, value in options.items() for arg in ("--" + name.replace("_", "-"), value)]
    cli = run_cli("query", "-c", str(config), "--follow", "--timeout", "1", *flags, sql)
    assert cli.returncode == 2
    assert cli.stderr == f"streamq: error: {error}\n"  # the same one line, in place
    assert page.execute_script("return document.getElementById('live-stop').disabled")  # nothing started


def test_the_schedule_page_shows_a_sink_delivering(page):
    show(page, "schedule")
    sent = (
        "const t = document.querySelector('#schedule-sinks table'); if (!t) return null;"
        "const h = Array.from(t.querySelectorAll('th')).map(x => x.textContent);"
        "const row = Array.from(t.querySelectorAll('tbody tr')).find(r => r.children[0].textContent === 'out');"
        "return row ? Number(row.children[h.indexOf('sent')].textContent) : null"
    )
    first = wait_for(page, sent + " || -1")
    assert retry(lambda: (page.execute_script(sent) or 0) > max(first, 0), timeout=10)
    queries = page.execute_script("return document.querySelector('#schedule-queries').textContent")
    assert "clock" in queries
    wait_for(page, "return document.getElementById('schedule-status').textContent.startsWith('updated')")
    time.sleep(2.5)  # one more refresh, so the charts have two points: for the screenshot only
    screenshot(page, "schedule")


class _EvilPage(http.server.BaseHTTPRequestHandler):
    """Another origin on this host whose page tries to use the console with the visitor's cookie."""

    target = ""

    def do_GET(self):
        body = f"""<!doctype html><title>evil</title><script>
fetch("{self.target}/api/query", {{method: "POST", mode: "no-cors", credentials: "include",
  body: JSON.stringify({{sql: "SELECT 'pwned'"}})}}).finally(() => document.title = "sent");
</script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_cross_origin_requests_without_the_csrf_token_are_refused(page, console):
    from web_console import ApiClient

    api = ApiClient(console.origin).login(console.link)
    refused_before = api.get("/api/status")[1]["refused"]
    _EvilPage.target = console.origin
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EvilPage)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page.get(f"http://127.0.0.1:{evil.server_address[1]}/")
        assert wait_for(page, "return document.title === 'sent'")
    finally:
        evil.shutdown()
        evil.server_close()
    assert retry(lambda: "cross-origin request from http://127.0.0.1:" in console.stderr())
    assert api.get("/api/status")[1]["refused"] > refused_before
    # By hand: the session cookie alone is not enough, nor a token with another Origin.
    status, body = api.post("/api/query", {"sql": "SELECT 1"}, csrf=False)
    assert (status, body["error"]) == (403, "refused: no CSRF token")
    status, body = api.post("/api/query", {"sql": "SELECT 1"}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in body["error"]
    status, body = api.post("/api/query", {"sql": "SELECT 1"}, headers={"X-CSRF-Token": "forged"})
    assert status == 403
    assert api.post("/api/query", {"sql": "SELECT 1 AS one"}) == (
        200,
        {"columns": ["one"], "rows": [[1]], "truncated": None, "elapsed_ms": pytest.approx(0, abs=1000)},
    )
    page.get(console.origin + "/")  # back to the console for the tests after this one


def test_nothing_is_fetched_from_outside_the_host(page, console):
    requested_urls(page)
    urls = page.requested
    assert any(u.endswith("/static/app.js") for u in urls) and any("/api/live/" in u for u in urls)
    # chrome:// is the browser's own new-tab page, built in; data: and blob: are made in the page.
    assert {urlsplit(u).scheme for u in urls} <= {"http", "data", "blob", "chrome"}, {urlsplit(u).scheme for u in urls}
    outside = [u for u in urls if urlsplit(u).scheme == "http" and urlsplit(u).hostname != "127.0.0.1"]
    assert not outside, f"requests that left the host: {outside}"
    console_port = str(console.port)
    strays = [u for u in urls if urlsplit(u).scheme in ("http", "https") and str(urlsplit(u).port) != console_port]
    assert len({urlsplit(s).port for s in strays}) <= 1, strays  # only the test's own cross-origin page
    assert os.path.exists(console.dir / "state.db")
