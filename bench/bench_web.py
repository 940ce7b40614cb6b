"""Benchmark: the web console in headless Chromium, against baselines measured in the same run.

Not a test: prints figures and ratios.

    .venv/bin/python bench/bench_web.py [--rate 2000] [--seconds 10]

Starts `python -m streamq run` with a JSON-lines source and [web] listen, logs in with
the printed link, then measures:

- Live: a writer appends ``rate`` records/s to the source's file for ``seconds``; the
  Live page follows ``SELECT * FROM app_events``. Figures: rows/s the page drew (from
  its own counter) against the rate written (the baseline), and rows the page did not
  draw by the end.
- Query: time to the first row on screen for a 100,000-row result, against
  `streamq query --connect SOCKET --json` (the same rows through the control socket,
  printed in full) and the bare HTTP request to /api/query (the same rows as JSON).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from web_console import ApiClient, WebDaemon, start_browser, wait_for  # noqa: E402

ROWS_100K = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000) SELECT n, printf('row %d', n) AS label, n * 7 AS seven FROM r"


def write_records(path: Path, rate: int, seconds: float, stop: threading.Event) -> int:
    """Append ``rate`` JSON lines a second, in 50 ms slices; return how many were written."""
    written = 0
    started = time.monotonic()
    with open(path, "a", buffering=1) as f:
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            due = int(elapsed * rate) - written
            if due > 0:
                f.write(
                    "".join(
                        json.dumps({"seq": written + i, "user": f"u{(written + i) % 50}", "status": 200}) + "\n"
                        for i in range(due)
                    )
                )
                written += due
            time.sleep(0.05)
    return written


def bench_live(driver, daemon: WebDaemon, rate: int, seconds: float) -> None:
    driver.execute_script("location.hash = 'live'")
    driver.execute_script(
        "document.getElementById('live-sql').value = 'SELECT seq, user, status FROM app_events';"
        "document.getElementById('live-start').click()"
    )
    assert wait_for(driver, "return document.getElementById('live-status').textContent.startsWith('following')"), (
        driver.execute_script("return document.getElementById('live-error').textContent")
    )
    counter = "return Number(document.getElementById('live-count').dataset.rendered)"
    stop = threading.Event()
    result: list[int] = []
    writer = threading.Thread(target=lambda: result.append(write_records(daemon.records, rate, seconds, stop)))
    t0 = time.monotonic()
    writer.start()
    samples = []
    while writer.is_alive():
        samples.append((time.monotonic() - t0, driver.execute_script(counter)))
        time.sleep(0.5)
    writer.join()
    written = result[0]
    end = time.monotonic()
    drawn = wait_for(
        driver,
        f"const n = Number(document.getElementById('live-count').dataset.rendered); return n >= {written} && n",
        10,
    ) or driver.execute_script(counter)
    caught_up = time.monotonic() - end
    steady = [(t, n) for t, n in samples if t >= 1.0]
    per_second = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]) if len(steady) > 1 else 0
    print(f"Live page, {rate:,} events/s written for {seconds:g} s ({written:,} records):")
    print(f"  rows/s drawn by the page (steady state): {per_second:,.0f}  = {per_second / rate:.2f}x the rate written")
    print(
        f"  rows on the page at the end: {drawn:,} of {written:,}; caught up {caught_up:.2f} s after the writer stopped"
    )
    driver.execute_script("document.getElementById('live-stop').click()")


def bench_first_row(driver, daemon: WebDaemon, api: ApiClient, runs: int) -> None:
    driver.execute_script("location.hash = 'query'")
    times = []
    for _ in range(runs):
        driver.execute_script(
            "document.getElementById('query-grid').querySelector('.visible').replaceChildren();"
            "document.getElementById('query-status').dataset.rows = '';"
            "document.getElementById('query-sql').value = arguments[0];",
            ROWS_100K,
        )
        t0 = time.monotonic()
        driver.execute_script("document.getElementById('query-run').click()")
        wait_for(driver, "return document.querySelector('#query-grid .visible .row') !== null", 60)
        times.append(time.monotonic() - t0)
        assert driver.execute_script("return document.getElementById('query-status').dataset.rows") == "100000"
    http_times = []
    for _ in range(runs):
        t0 = time.monotonic()
        status, reply = api.post("/api/query", {"sql": ROWS_100K})
        http_times.append(time.monotonic() - t0)
        assert status == 200 and len(reply["rows"]) == 100_000
    cli_times = []
    for _ in range(runs):
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "streamq", "query", "--connect", str(daemon.socket), "--json", ROWS_100K],
            capture_output=True,
            check=True,
        )
        cli_times.append(time.monotonic() - t0)
        assert done.stdout.count(b"\n") >= 1
    page, http, cli = (statistics.median(t) for t in (times, http_times, cli_times))
    print(f"Query page, 100,000 rows, median of {runs}:")
    print(f"  time to the first row on screen: {page * 1000:,.0f} ms")
    print(
        f"  baseline: streamq query --connect --json (all rows printed): {cli * 1000:,.0f} ms  -> page/CLI {page / cli:.2f}x"
    )
    print(
        f"  the HTTP request alone (/api/query, parsed by urllib+json): {http * 1000:,.0f} ms  -> page/HTTP {page / http:.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sqbweb"))
    records = root / "app.jsonl"
    records.touch()
    config = f'[sources.jsonl.app]\npath = "{records}"\npoll_interval = "20ms"\n'
    config += 'columns = { seq = "INTEGER", user = "TEXT", status = "INTEGER" }\n'
    config += "[rings]\ncapacity = 200000\n"
    daemon = WebDaemon(root, config, web="max_rows = 100000")
    daemon.records = records
    profile = tempfile.mkdtemp(prefix="sqbchrome")
    driver = None
    try:
        link = daemon.wait_running()
        driver = start_browser(profile)
        driver.get(link)
        wait_for(driver, "return document.body.dataset.ready")
        bench_live(driver, daemon, args.rate, args.seconds)
        bench_first_row(driver, daemon, ApiClient(daemon.origin).login(link), args.runs)
    finally:
        if driver is not None:
            driver.quit()
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
