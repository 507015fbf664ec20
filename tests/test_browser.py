"""Real Chromium (Debian's /usr/bin/chromium through Playwright) against a real Daphne server
(`python -m youthhub serve`) on PostgreSQL + Redis."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import PASSWORD
from tests.services import _free_port

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """A Daphne worker in its own process, sharing the test database and Redis."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",  # same password hasher as the tests
        "DATABASE_URL": _database_url(),
        "YOUTHHUB_SERVE_STATIC": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    with open(log_path, "w") as log:
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
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("server did not start:\n" + log_path.read_text()) from None
            time.sleep(0.2)
    yield {"url": url, "log": log_path}
    proc.terminate()
    proc.wait(10)
    with django_db_blocker.unblock():
        _wait_for_server_sessions_to_end()


def _wait_for_server_sessions_to_end(seconds: float = 10) -> None:
    """The server's database sessions end a moment after it exits; the test database can only
    be dropped after that."""
    from django.db import connection

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            cursor.execute(
                "SELECT pid, client_port, state, query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        time.sleep(0.1)


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


def test_youth_and_staff_chat_with_typing_read_receipts_and_reload(daphne_server, ingrid, browser):
    # `ingrid` comes before `browser`: ORM work inside Playwright's loop context would open a
    # second database connection that outlives the test.
    from playwright.sync_api import expect

    url = daphne_server["url"]
    youth = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
    staff = browser.new_context().new_page()

    youth.goto(url + "/")
    youth.click("#start-chat")
    expect(youth.locator("#chat-state")).to_contain_text("nummer 1 i køen")

    staff.goto(url + "/staff/")
    staff.fill("#id_username", "ingrid")
    staff.fill("#id_password", PASSWORD)
    staff.click("button[type=submit]")
    expect(staff.locator("#status")).to_have_text("Online")
    staff.locator(".accept").first.click()
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid er her")

    # The youth writes first; staff sees it and the typing before it.
    youth.locator("#text").press_sequentially("hei")
    pane = staff.locator(".pane:not([hidden])")
    expect(pane.locator(".typing")).to_contain_text("is typing")
    youth.locator("#text").fill("hei, jeg er stressa for eksamen")
    youth.locator("#text").press("Enter")
    expect(pane.locator(".msg.theirs .text")).to_have_text(["hei, jeg er stressa for eksamen"])
    # Ingrid's pane is open and visible, so the youth's message is read: youth sees "Lest".
    expect(youth.locator(".read-receipt")).to_have_text("Lest")

    pane.locator("textarea").fill("Så bra at du skriver. Hva er det som stresser mest?")
    pane.locator("textarea").press("Enter")
    expect(youth.locator(".msg.theirs .text")).to_have_text(
        ["Så bra at du skriver. Hva er det som stresser mest?"]
    )
    expect(pane.locator(".read-receipt")).to_have_text("Read")

    youth.locator("#text").fill("matte")
    youth.locator("#text").press("Enter")
    expected = [
        "hei, jeg er stressa for eksamen",
        "Så bra at du skriver. Hva er det som stresser mest?",
        "matte",
    ]
    expect(pane.locator(".msg .text")).to_have_text(expected)

    youth.reload()
    expect(youth.locator("#messages .msg .text")).to_have_text(expected)
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid er her")
    ARTIFACTS.mkdir(exist_ok=True)
    youth.screenshot(path=str(ARTIFACTS / "youth-chat-360px.png"), full_page=True)
    staff.screenshot(path=str(ARTIFACTS / "staff-dashboard.png"), full_page=True)

    # Privacy: the server's access log has lines, and none names a client address.
    log = daphne_server["log"].read_text()
    assert '"GET /"' in log and "WSCONNECT /ws/youth/" in log
    assert not re.search(r"\b127\.0\.0\.1\b", log), log
