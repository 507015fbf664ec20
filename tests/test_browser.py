"""Real Chromium (Debian's /usr/bin/chromium through Playwright) against a real Daphne server
(`python -m youthhub serve`) on PostgreSQL + Redis."""

import re

import pytest

from tests.browser import (
    _wait_for_server_sessions_to_end,
    screenshot,
    staff_login,
    start_server,
)
from tests.conftest import PASSWORD
from tests.services import _free_port

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_youth_and_staff_chat_with_typing_read_receipts_and_reload(daphne_server, team, browser):
    # `team` comes before `browser`: ORM work inside Playwright's loop context would open a
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

    pane.locator(".composer textarea").fill("Så bra at du skriver. Hva er det som stresser mest?")
    pane.locator(".composer textarea").press("Enter")
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
    screenshot(youth, "youth-chat-360px.png")
    screenshot(staff, "staff-dashboard.png")

    # Privacy: the server's access log has lines, and none names a client address.
    log = daphne_server["log"].read_text()
    assert '"GET /"' in log and "WSCONNECT /ws/youth/" in log
    assert not re.search(r"\b127\.0\.0\.1\b", log), log


def test_a_youth_picks_a_named_person_and_that_persons_dashboard_gets_the_request(
    daphne_server, team, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    sara_page = browser.new_context().new_page()
    ingrid_page = browser.new_context().new_page()
    staff_login(sara_page, url, "sara")
    staff_login(ingrid_page, url, "ingrid")
    youth = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
    youth.goto(url + "/")
    # Matching on interests: ticking "music" puts Sara first and marks her card.
    expect(youth.locator("#people .card")).to_have_count(2)
    youth.get_by_label("Musikk").check()
    expect(youth.locator("#people .card").first).to_have_class(re.compile("match"))
    expect(youth.locator("#people .card").first).to_contain_text("Sara")
    youth.get_by_role("button", name=re.compile("Snakk med Sara")).click()
    expect(youth.locator("#chat-state")).to_contain_text("Du venter på Sara")
    expect(youth.locator("#chat-state")).to_contain_text("Noen kan svare nå")

    row = sara_page.locator("#queue li").first
    expect(row).to_contain_text("asked for you")
    expect(row.locator("button.accept")).to_be_enabled()
    expect(ingrid_page.locator("#queue li").first.locator("button.accept")).to_be_disabled()
    screenshot(youth, "youth-waiting-for-sara-360px.png")
    row.locator("button.accept").click()
    expect(youth.locator("#chat-state")).to_contain_text("Sara er her")


def test_a_kiosk_ticket_is_called_and_the_youths_phone_shows_it(daphne_server, team, browser):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid_page = browser.new_context().new_page()
    staff_login(ingrid_page, url, "ingrid")
    ingrid_page.fill("#my-room", "Rom 4")
    kiosk = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    kiosk.goto(url + "/dropin/tonsberg/kiosk/")
    kiosk.get_by_role("button", name="Første ledige").click()
    expect(kiosk.locator("#kiosk-ticket")).to_have_text("B-1")
    expect(kiosk.locator("#kiosk-qr svg")).to_be_visible()
    follow_url = kiosk.locator("#kiosk-qr").get_attribute("data-follow-url")
    assert "#resume=" in follow_url
    screenshot(kiosk, "kiosk-ticket.png")

    # The youth scans the code: their phone takes the ticket over.
    phone = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
    phone.goto(follow_url)
    expect(phone.locator("#ticket")).to_have_text("Lappen din: B-1")
    expect(phone.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    assert "resume" not in phone.url  # the code left the address bar

    ingrid_page.get_by_role("button", name="Call B-1").click()
    expect(phone.locator("#chat-state")).to_contain_text("Din tur! Gå til Rom 4. Ingrid venter")
    expect(phone).to_have_title("Din tur! B-1")
    pane = ingrid_page.locator(".pane:not([hidden])")
    expect(pane.locator(".chat-state")).to_contain_text("Called B-1 to Rom 4")
    pane.get_by_role("button", name="Arrived").click()
    expect(phone.locator("#chat-state")).to_contain_text("Ingrid er her")


def test_the_crisis_flag_reorders_the_staff_queue(daphne_server, team, browser):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid_page = browser.new_context().new_page()
    staff_login(ingrid_page, url, "ingrid")
    first = browser.new_context().new_page()
    first.goto(url + "/")
    first.click("#start-chat")
    expect(first.locator("#chat-state")).to_contain_text("nummer 1")
    second = browser.new_context(viewport={"width": 360, "height": 740}).new_page()
    second.goto(url + "/")
    second.click("#start-chat")
    expect(second.locator("#chat-state")).to_contain_text("nummer 2")
    expect(ingrid_page.locator("#queue li")).to_have_count(2)
    second_id = ingrid_page.locator("#queue li").nth(1).get_attribute("data-conversation-id")

    second.get_by_role("button", name="Jeg er ikke trygg nå").click()
    expect(second.locator("#crisis")).to_be_focused()
    expect(second.locator("#crisis-sent")).to_be_visible()
    expect(second.locator("#chat-state")).to_contain_text("nummer 1")
    expect(first.locator("#chat-state")).to_contain_text("nummer 2")
    top = ingrid_page.locator("#queue li").first
    expect(top).to_have_attribute("data-conversation-id", second_id)
    expect(top).to_have_class(re.compile("crisis"))
    expect(ingrid_page.locator("#crisis-banner")).to_contain_text("not safe")
    screenshot(ingrid_page, "staff-crisis-first.png")


def test_queue_positions_survive_a_restart_of_the_server(
    django_db_blocker, team, browser, tmp_path
):
    """Every worker gone (kill -9), a new one started: the queue is the database, so every
    youth comes back to the same place, and their pages reconnect by themselves."""
    from playwright.sync_api import expect

    port = _free_port()
    log_path = tmp_path / "server.log"
    proc = start_server(port, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        pages = []
        for n in range(1, 4):
            page = browser.new_context().new_page()
            page.goto(url + "/")
            page.click("#start-chat")
            expect(page.locator("#chat-state")).to_contain_text(f"nummer {n} i køen")
            pages.append(page)
        proc.kill()
        proc.wait(10)
        for page in pages:
            expect(page.locator("#status")).to_have_attribute("data-state", "offline")
        proc = start_server(port, log_path)
        for n, page in enumerate(pages, start=1):
            expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=20000)
            expect(page.locator("#chat-state")).to_contain_text(f"nummer {n} i køen")
    finally:
        proc.kill()
        proc.wait(10)
        with django_db_blocker.unblock():
            _wait_for_server_sessions_to_end()
