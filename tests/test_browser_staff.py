"""A busy evening on the dashboard, in Chromium: three chats at once, an internal note, a
transfer with a note, an end with tags and a feedback prompt, and a youth who comes back
with a return code on another browser to the same person, who sees the earlier chat."""

import re

import pytest
from django.db import connection

from chat.models import Conversation
from tests.browser import screenshot, staff_login
from youthhub.audit.models import AuditEvent

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def youth_page(browser, url):
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(url + "/")
    return page


@pytest.fixture
def canned(db):
    """The demo's canned replies (created before Chromium starts: ORM work first)."""
    from youthhub.staff.management.commands.seed_demo import DEMO_CANNED
    from youthhub.staff.services import canned_reply_ensure

    for order, (title, language, role, text) in enumerate(DEMO_CANNED):
        canned_reply_ensure(title=title, text=text, language=language, role=role, order=order)


def alias_of(staff, text):
    """The alias on the dashboard tab whose conversation contains `text`."""
    tabs = staff.locator("#tabs .tab")
    for i in range(tabs.count()):
        tabs.nth(i).click()
        if text in staff.locator("#panes .pane:visible .messages").inner_text():
            return tabs.nth(i).inner_text().split(" (")[0]
    raise AssertionError(f"no conversation shows {text!r}")


def pane_of(staff, alias):
    """The dashboard pane of the conversation with `alias` (activating its tab)."""
    staff.locator("#tabs .tab", has_text=alias).click()
    return staff.locator("#panes .pane:visible")


def test_a_staff_member_runs_three_chats_transfers_one_and_ends_one(
    daphne_server, team, canned, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid = browser.new_context(viewport=DESKTOP).new_page()
    staff_login(ingrid, url, "ingrid")

    # Three youth ask for Ingrid by name; she takes all three.
    youth = []
    for _ in range(3):
        page = youth_page(browser, url)
        page.locator("#people .card", has_text="Ingrid").locator("button.choose").click()
        expect(page.locator("#chat-state")).to_contain_text("Ingrid")
        youth.append(page)
    expect(ingrid.locator("#queue li")).to_have_count(3)
    for _ in range(3):
        ingrid.click("#take-next")
    expect(ingrid.locator("#tabs .tab")).to_have_count(3)
    for n, page in enumerate(youth):
        expect(page.locator("#chat-state")).to_contain_text("Ingrid er her")
        page.fill("#text", f"Hei fra ungdom {n}")
        page.press("#text", "Enter")
    # Unread counts on the tabs she is not looking at.
    expect(ingrid.locator("#tabs .tab", has_text="(1)")).to_have_count(2)
    expect(ingrid.locator("#panes .pane .messages .msg")).to_have_count(3)
    aliases = [alias_of(ingrid, f"Hei fra ungdom {n}") for n in range(3)]

    # A canned reply, edited before sending.
    pane = pane_of(ingrid, aliases[0])
    pane.locator("select.canned").select_option(label="Velkommen")
    box = pane.locator(".composer textarea")
    expect(box).to_have_value(
        "Hei, så fint at du tok kontakt! Jeg heter Ingrid. Hva har du lyst til å snakke om?"
    )
    box.fill(box.input_value() + " :)")
    box.press("Enter")
    expect(youth[0].locator("#messages .msg.theirs .text")).to_contain_text(["Jeg heter Ingrid"])

    # An internal note on the second chat never reaches that youth.
    pane = pane_of(ingrid, aliases[1])
    pane.locator(".show-notes").click()
    pane.locator(".note-form textarea").fill("Eksamensstress, sover lite")
    pane.locator(".note-form button[type=submit]").click()
    expect(pane.locator(".notes .note")).to_have_count(1)

    # Transfer the second chat to Sara with a note; Ingrid stays until Sara accepts.
    sara = browser.new_context(viewport=DESKTOP).new_page()
    staff_login(sara, url, "sara")
    ingrid.locator("#refresh-shift").click()
    expect(ingrid.locator("#shift tr", has_text="Sara")).to_have_count(1)
    pane.locator(".show-transfer").click()
    pane.locator(".transfer-target").select_option(label="Sara (0 / 3)")
    pane.locator(".transfer-note").fill("Trenger søvnråd – helsesykepleier passer bedre.")
    pane.locator(".transfer-panel button[type=submit]").click()
    expect(pane.locator(".transfer-pending")).to_be_visible()
    offer = sara.locator("#transfers li")
    expect(offer).to_have_count(1)
    offer.locator("button.preview").click()
    dialog = sara.locator("#preview-dialog")
    expect(dialog.locator(".preview-notes")).to_contain_text("Trenger søvnråd")
    expect(dialog.locator(".preview-notes")).to_contain_text("Eksamensstress")
    expect(dialog.locator(".preview-messages")).to_contain_text("Hei fra ungdom 1")
    screenshot(sara, "staff-transfer-preview.png")
    dialog.locator(".preview-accept").click()
    expect(sara.locator("#tabs .tab", has_text=aliases[1])).to_have_count(1)
    # "{name} has joined the chat and can see what you have written, ..." in bokmål.
    expect(youth[1].locator("#chat-state")).to_have_text(
        "Sara er med i samtalen nå og ser det du har skrevet, så du slipper å si det igjen."
    )
    expect(youth[1].locator("#messages")).to_contain_text("Hei fra ungdom 1")
    expect(pane_of(ingrid, aliases[1]).locator(".chat-state")).to_contain_text("Sara")
    assert "Eksamensstress" not in youth[1].content()
    assert "søvnråd" not in youth[1].content()

    # End the third chat with tags, a triage colour and a feedback prompt.
    pane = pane_of(ingrid, aliases[2])
    pane.locator(".end").click()
    pane.locator(".end-tags input[value=stress]").check()
    pane.locator(".end-tags input[value=school_work]").check()
    pane.locator(".end-panel input[value=yellow]").check()
    pane.locator(".ask-feedback").check()
    screenshot(ingrid, "staff-end-with-tags.png")
    pane.locator(".end-panel button[type=submit]").click()
    feedback = youth[2].locator("#feedback")
    expect(feedback).to_be_visible()
    assert "yellow" not in youth[2].content() and "stress" not in youth[2].content()
    ended_id = pane.get_attribute("id").removeprefix("pane-")
    try:  # what was stored (inside Playwright's loop: close what the query opens)
        ended = Conversation.objects.get(id=ended_id)
        assert (ended.state, ended.tags, ended.triage) == (
            "ended",
            ["stress", "school_work"],
            "yellow",
        )
    finally:
        connection.close()
    screenshot(youth[2], "youth-feedback-360px.png")
    for statement in ("understood", "talked_about", "form", "useful"):
        feedback.locator(f"input[name={statement}][value='5']").check()
    feedback.locator("button[type=submit]").click()
    expect(youth[2].locator("#feedback-thanks")).to_be_visible()
    screenshot(ingrid, "staff-dashboard-three-chats.png")


def test_a_returning_youth_reaches_the_same_person_who_sees_the_earlier_chat(
    daphne_server, team, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid = browser.new_context(viewport=DESKTOP).new_page()
    staff_login(ingrid, url, "ingrid")
    first = youth_page(browser, url)
    first.locator("#people .card", has_text="Ingrid").locator("button.choose").click()
    ingrid.locator("#queue li button.accept").first.click()
    expect(first.locator("#chat-state")).to_contain_text("Ingrid er her")
    first.fill("#text", "Pappa drikker mye")
    first.press("#text", "Enter")
    expect(ingrid.locator("#panes .pane:visible .messages")).to_contain_text("Pappa drikker")
    first.locator("#resume-section summary").click()
    first.click("#show-code")
    expect(first.locator("#my-code")).to_have_text(
        re.compile(r"^[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}$")
    )
    code = first.locator("#my-code").text_content()
    pane = ingrid.locator("#panes .pane:visible")
    pane.locator(".end").click()
    pane.locator(".end-panel button[type=submit]").click()
    expect(first.locator("#chat-state")).to_contain_text("avsluttet")

    # Days later, on another phone: the code brings the same identity back.
    again = youth_page(browser, url)
    again.locator("#resume-section summary").click()
    again.fill("#resume-code", code)
    again.click("#resume button[type=submit]")
    previous = again.locator("#previous button.choose", has_text="Ingrid")
    expect(previous).to_be_visible()
    screenshot(again, "youth-returning-360px.png")
    # Sara is on too: a request for anyone would be hers to take as well. This one asked for
    # Ingrid by name, so only Ingrid may take it; Sara sees it, disabled.
    sara = browser.new_context(viewport=DESKTOP).new_page()
    staff_login(sara, url, "sara")
    previous.click()
    expect(again.locator("#chat-state")).to_contain_text("Ingrid")
    sara_row = sara.locator("#queue li")
    expect(sara_row).to_have_count(1)
    expect(sara_row.locator("button.accept")).to_be_disabled()
    expect(sara_row).to_contain_text("asked for Ingrid")
    expect(sara.locator("#take-next")).to_be_disabled()
    row = ingrid.locator("#queue li")
    expect(row).to_have_count(1)
    expect(row).to_have_class(re.compile(r"\bfor-me\b"))
    expect(row).to_contain_text("asked for you")
    row.locator("button.accept").click()
    pane = ingrid.locator("#panes .pane:visible")
    earlier = pane.locator(".show-earlier")
    expect(earlier).to_be_visible()
    earlier.click()
    pane.locator(".earlier-list button").first.click()
    expect(pane.locator(".earlier-view")).to_contain_text("Pappa drikker mye")
    screenshot(ingrid, "staff-earlier-conversation.png")
    try:  # the read was audited (inside Playwright's loop: close what the query opens)
        reads = AuditEvent.objects.filter(action="transcript.read", actor__username="ingrid")
        assert reads.count() == 1
    finally:
        connection.close()
