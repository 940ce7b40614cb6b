"""Helpers for the web console's tests: a daemon serving it, headless Chromium, the HTTP API by hand.

The browser is Debian's chromium driven by Selenium through /usr/bin/chromedriver, with
every background service off and a fresh profile, and with Chrome's performance log on:
:func:`requested_urls` reads from it every URL the browser asked for, so a test can prove
that nothing was fetched from outside the host. Without chromium, browser tests skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from conftest import retry

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# `STREAMQ_SCREENSHOTS=docs/screenshots pytest tests/test_web_*.py` refreshes the README's pictures;
# otherwise they go to a temporary directory, so a test run leaves the checkout as it was.
SCREENSHOTS = Path(os.environ.get("STREAMQ_SCREENSHOTS") or tempfile.gettempdir() + "/streamq-screenshots")
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1400,900",
)
LINK = re.compile(r"web console at (\S+)")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDaemon:
    """``python -m streamq run -c cfg`` in its own directory with ``[web] listen`` on a free port."""

    def __init__(self, root: Path, extra: str = "", *, web: str = "", name: str = "d") -> None:
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.socket = self.dir / "run" / "control.sock"
        (self.dir / "streamq.toml").write_text(
            f"""
[state]
path = "{self.dir}/state.db"
[control]
path = "{self.socket}"
[web]
listen = "127.0.0.1:{self.port}"
{web}
{extra}
"""
        )
        self.stderr_path = self.dir / "stderr.txt"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamq", "run", "-c", "streamq.toml"],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_running(self) -> str:
        """The login link the daemon printed."""
        assert retry(lambda: "running" in self.stderr() or self.proc.poll() is not None, timeout=20), self.stderr()
        assert self.proc.poll() is None, self.stderr()
        match = LINK.search(self.stderr())
        assert match, self.stderr()
        return match.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class ApiClient:
    """The console's API through urllib: log in with the link, then GET/POST with the CSRF token."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        self.csrf = ""

    def login(self, link: str) -> ApiClient:
        status, _, _ = self.call("GET", link)
        assert status == 303
        self.csrf = self.get("/api/session")[1]["csrf"]
        return self

    def call(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout=30):
        if url.startswith("/"):
            url = self.origin + url
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def get(self, path: str):
        status, _, data = self.call("GET", path)
        return status, json.loads(data)

    def post(self, path: str, value: dict, *, csrf: bool = True, headers: dict | None = None):
        sent = {"Content-Type": "application/json"}
        if csrf:
            sent["X-CSRF-Token"] = self.csrf
        sent.update(headers or {})
        status, _, data = self.call("POST", path, json.dumps(value).encode(), sent)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, {"error": data.decode()}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def chromium_missing() -> str | None:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def start_browser(profile: str):
    """Headless Chromium with the performance log on; skip with the reason when it cannot run here."""
    missing = chromium_missing()
    if missing:
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": os.path.join(profile, "downloads")})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser(request):
    profile = tempfile.mkdtemp(prefix="streamq-chromium-")
    holder: list = []

    def cleanup():
        for driver in holder:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    request.addfinalizer(cleanup)
    holder.append(start_browser(profile))
    driver = holder[0]
    driver.requested = []  # every URL asked for so far (performance log entries are read once)
    driver.profile = profile
    return driver


def requested_urls(driver) -> list[str]:
    """Every URL the browser requested since the last call (added to ``driver.requested``)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    driver.requested.extend(urls)
    return urls


def wait_for(driver, script: str, timeout: float = 10.0):
    """The value of ``script`` (JavaScript returning something) once it is truthy, within ``timeout``."""
    return retry(lambda: driver.execute_script(script), timeout=timeout, interval=0.03)


def screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
