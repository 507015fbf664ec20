"""Browser-test plumbing: a real Daphne server (`python -m youthhub serve`) on the test
PostgreSQL + Redis, and Debian's Chromium through Playwright. The fixtures are registered in
conftest.py, so every tests/test_browser*.py module can use them."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.services import _free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _database_url() -> str:
    db = settings.DATABASES["default"]  # already points at the test database
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def server_name(port: int) -> str:
    return f"youthhub-test-{port}"


def start_server(port: int, log_path: Path, **extra_env: str) -> subprocess.Popen:
    """`python -m youthhub serve` on the test database and Redis; returns once it answers.
    `extra_env` sets more of its environment (e.g. YOUTHHUB_REQUIRE_2FA="1")."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",  # same password hasher as the tests
        # Named, so that its own database sessions can be told from other servers' ones.
        "DATABASE_URL": _database_url() + f"?application_name={server_name(port)}",
        "YOUTHHUB_SERVE_STATIC": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "YOUTHHUB_QUEUE_TICK_SECONDS": "2",
        **extra_env,
    }
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "youthhub", "serve", "--bind", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/staff/login/", timeout=2)
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("server did not start:\n" + log_path.read_text()) from None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """A Daphne worker in its own process, sharing the test database and Redis."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    proc = start_server(port, log_path)
    yield {"url": f"http://127.0.0.1:{port}", "log": log_path}
    proc.terminate()
    proc.wait(10)
    with django_db_blocker.unblock():
        _wait_for_server_sessions_to_end(terminate=True)


def _wait_for_server_sessions_to_end(
    seconds: float = 10, terminate: bool = False, port: int | None = None
) -> None:
    """The server's database sessions end a moment after it exits; the test database can only
    be dropped after that. At the end of the session (`terminate`), sessions still left after
    `seconds` (a worker thread's idle connection) are ended so the database can be dropped.
    With `port`, only the sessions of the server on that port count (others may be running)."""
    from django.db import connection

    others = " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    if port is not None:
        others += f" AND application_name = '{server_name(port)}'"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*)" + others)
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.1)
    if terminate:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid)" + others)


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("YOUTHHUB_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs a loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def two_factor_server(transactional_db, tmp_path):
    """`python -m youthhub serve` like daphne_server, but with two-factor login required (the
    suite has it off), for one test; returns its URL."""
    port = _free_port()
    proc = start_server(port, tmp_path / "server.log", YOUTHHUB_REQUIRE_2FA="1")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
    _wait_for_server_sessions_to_end(port=port)


def password_step(page, url, username, password=None):
    """Open the dashboard, which asks for the login; give the username and password."""
    from tests.conftest import PASSWORD

    page.goto(url + "/staff/")
    page.fill("#id_username", username)
    page.fill("#id_password", password or PASSWORD)
    page.click("button[type=submit]")


def staff_login(page, url, username, password=None):
    from playwright.sync_api import expect

    password_step(page, url, username, password)
    expect(page.locator("#status")).to_have_text("Online")


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot as a test artifact (test-artifacts/, not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
