"""Browser tests of the dashboard: headless Chromium (Debian's ``chromium`` package) driven by the
Python ``playwright`` package, against a real ``nof0`` process on the test's own database and Redis
prefix (the servers and isolation of ``tests/conftest.py``).

``make test-browser`` runs them; ``make test`` never collects this folder. The browser is the
machine's ``/usr/bin/chromium`` (``NOF0_CHROMIUM`` to use another): nothing here downloads one.
Screenshots go to ``tests_browser/screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from tests.conftest import ETC, REPO, pg_dsn, redis_prefix, template_db, test_servers  # noqa: F401 (fixtures)

CHROMIUM = os.environ.get("NOF0_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CAPTURE = REPO / "tests" / "fixtures" / "nof1-2025-10-26"
NOF0 = [sys.executable, "-m", "nof0.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Arena:
    """A nof0 configuration of the test's own database and Redis prefix, and the processes it runs."""

    config: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    url: str = ""

    def nof0(self, *args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run([*NOF0, "--config", str(self.config), *args], input=stdin, env=self.env,
                              capture_output=True, timeout=timeout, cwd=REPO)
        assert done.returncode == 0, (args, done.stdout.decode()[-2000:], done.stderr.decode()[-2000:])
        return done

    def start(self, command: str, *args: str, log: Path) -> str:
        """``nof0 serve`` or ``nof0 run`` on a free port; returns the base URL once /readyz answers 200."""
        port = free_port()
        out = open(log, "wb")
        proc = subprocess.Popen([*NOF0, "--config", str(self.config), command, "--host", "127.0.0.1",
                                 "--port", str(port), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=REPO)
        self.procs.append(proc)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"nof0 {command} exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"nof0 {command} did not become ready: {log.read_text()[-2000:]}")

    def producer(self) -> subprocess.Popen[bytes]:
        """A live ``nof0 ingest -``: each line written (and flushed) is committed after 0.2 s of silence."""
        proc = subprocess.Popen([*NOF0, "--config", str(self.config), "ingest", "-"], env=self.env,
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        self.procs.append(proc)
        return proc

    def api(self, path: str) -> Any:
        r = httpx.get(f"{self.url}{path}", timeout=10)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


@pytest.fixture
def arena(tmp_path, pg_dsn, test_servers, redis_prefix) -> Iterator[Arena]:  # noqa: F811
    etc = tmp_path / "etc"
    shutil.copytree(ETC.parent, etc)
    manifest = yaml.safe_load((etc / "nof0.yaml").read_text())
    manifest["redis"]["prefix"] = redis_prefix
    (etc / "nof0.yaml").write_text(yaml.safe_dump(manifest))
    env = {**os.environ, "NOF0_POSTGRES_DSN": pg_dsn, "NOF0_REDIS_URL": test_servers.redis_url,
           "NOF0_DATA_DIR": str(tmp_path / "var")}
    a = Arena(etc / "nof0.yaml", env)
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A page with every console error and uncaught exception recorded."""

    def __init__(self, browser: Any, width: int = 1280, height: int = 900) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text} {m.location}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-loaded='1']", timeout=20_000)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page_factory(browser):
    pages: list[Page] = []

    def make(**kwargs: Any) -> Page:
        pages.append(Page(browser, **kwargs))
        return pages[-1]

    yield make
    for p in pages:
        p.close()
