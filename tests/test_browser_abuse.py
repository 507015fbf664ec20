"""Blocking in Chromium: Ingrid blocks a youth from the dashboard (a duration, a reason, a
confirm step); the youth's page shows a calm screen with the emergency numbers and when it
ends, and no composer, also after a reload; lifting the block gives the page its start back.
axe checks both states."""

import pytest

from chat.models import Block
from tests.browser import screenshot, staff_login
from tests.test_a11y import assert_accessible
from youthhub.audit.models import AuditEvent

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def test_staff_block_a_youth_who_sees_a_calm_screen_with_the_numbers(daphne_server, team, browser):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid = browser.new_context(viewport=DESKTOP).new_page()
    staff_login(ingrid, url, "ingrid")
    youth = browser.new_context(viewport=PHONE).new_page()
    youth.goto(url + "/")
    youth.locator("#people .card", has_text="Ingrid").locator("button.choose").click()
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid")
    ingrid.click("#take-next")
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid er her")
    youth.fill("#text", "dumme melding")
    youth.press("#text", "Enter")
    pane = ingrid.locator("#panes .pane:visible")
    expect(pane.locator(".messages")).to_contain_text("dumme melding")

    # Block: choose how long and why, then confirm in a second step.
    pane.locator(".show-block").click()
    panel = pane.locator(".block-panel")
    expect(panel).to_be_visible()
    panel.locator("input[value='24h']").check()
    panel.locator(".block-reason").select_option("abuse")
    panel.locator(".block-go").click()
    # (The dashboard speaks the browser's language, English here; the youth page bokmål.)
    expect(panel.locator(".block-confirm")).to_contain_text("24 hours")
    expect(panel.locator(".block-yes")).to_be_focused()
    assert_accessible(ingrid, "dashboard, block confirm step")
    screenshot(ingrid, "staff-block-confirm.png")
    panel.locator(".block-yes").click()

    # The dashboard: the chat ended, the block shown with a way to lift it.
    expect(pane.locator(".chat-state")).to_contain_text("has ended")
    expect(pane.locator(".block-status")).to_contain_text("is blocked until")
    expect(pane.locator(".show-block")).to_be_hidden()
    expect(ingrid.locator("#blocks li")).to_have_count(1)

    # The youth: a calm screen, the numbers, when it ends; no composer, no way to start.
    blocked = youth.locator("#blocked")
    expect(blocked).to_be_visible()
    expect(blocked).to_contain_text("Du kan ikke chatte med oss akkurat nå")
    for number in ("116 111", "116 123", "113"):
        expect(blocked).to_contain_text(number)
    expect(youth.locator("#blocked-until")).to_contain_text("Du kan skrive til oss igjen fra")
    for hidden in ("#chat", "#composer", "#start"):
        expect(youth.locator(hidden)).to_be_hidden()
    assert "abuse" not in youth.content().lower() and "Krenkende" not in youth.content()
    assert_accessible(youth, "youth page, blocked")
    screenshot(youth, "youth-blocked-360px.png")

    # Still blocked after a reload (the welcome says so).
    youth.reload()
    expect(youth.locator("#blocked")).to_be_visible()
    expect(youth.locator("#blocked-until")).to_contain_text("Du kan skrive til oss igjen fra")
    expect(youth.locator("#start")).to_be_hidden()
    # "I am not safe" shows the numbers; it starts no chat while blocked.
    youth.click("#not-safe")
    expect(youth.locator("#crisis")).to_be_focused()
    expect(youth.locator("#crisis-sent")).to_be_hidden()

    # Ingrid lifts the block: the youth's page offers a new start.
    pane.locator(".block-status .lift").click()
    expect(ingrid.locator("#blocks li")).to_have_count(0)
    expect(pane.locator(".block-status")).to_be_hidden()
    expect(youth.locator("#blocked")).to_be_hidden()
    expect(youth.locator("#start")).to_be_visible()
    assert not Block.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"block.add", "block.lift"} <= actions
