"""The warm handover end to end, in Chromium: staff propose from the dashboard, the youth reads
exactly what would be shared and consents on the phone, the partner accepts and joins the chat,
all three see the three-way conversation, and when the youth withdraws the partner's view
closes; and the partner continuing the chat after the staff member passed it on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser import screenshot, staff_login
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}

SECTIONS = {
    "concern": "Sover dårlig og gruer seg til skolen hver morgen",
    "own_words": "Jeg vil klare å gå på skolen igjen",
    "assessment": "Trenger mer enn lavterskel: en samtale hos helsesykepleier",
    "interim_plan": "Chat med Ingrid hver tirsdag til første møte",
    "who_does_what": "Ingrid følger opp til første møte",
}


@pytest.fixture
def hfu(db):
    """The service directory and a partner at Helsestasjon for ungdom Tønsberg (ORM first)."""
    from youthhub.handover import services

    services.service_directory_seed()
    services.partner_create_or_update(
        username="kari", password=PASSWORD, service_slug="hfu-tonsberg", display_name="Kari"
    )


def chatting_with_ingrid(browser, url):
    """Ingrid (desktop) in a chat with a youth (phone) who chose her: (ingrid, youth) pages."""
    from playwright.sync_api import expect

    ingrid = browser.new_context(viewport=DESKTOP).new_page()
    staff_login(ingrid, url, "ingrid")
    youth = browser.new_context(viewport=PHONE).new_page()
    youth.goto(url + "/")
    youth.locator("#people .card", has_text="Ingrid").locator("button.choose").click()
    ingrid.locator("#queue li button.accept").first.click()
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid er her")
    return ingrid, youth


def write_handover(pane, reach: str):
    """Open the pane's handover form and fill it in for Helsestasjon for ungdom (not sent)."""
    pane.locator(".show-handover").click()
    form = pane.locator(".handover-panel")
    form.locator(".handover-service").select_option(label="Helsestasjon for ungdom Tønsberg")
    form.locator(f"input[value={reach}]").check()
    for key, text in SECTIONS.items():
        form.locator(f"textarea[data-section={key}]").fill(text)
    return form


def kari_opens_the_handover(browser, url):
    """Kari (the partner, desktop) logs in and opens the handover in her inbox: her page."""
    from playwright.sync_api import expect

    kari = browser.new_context(viewport=DESKTOP).new_page()
    kari.goto(url + "/staff/login/")
    kari.fill("#id_username", "kari")
    kari.fill("#id_password", PASSWORD)
    kari.click("button[type=submit]")
    expect(kari).to_have_url(url + "/partner/")
    kari.locator("main a[href*='/partner/h/']").first.click()
    return kari


def test_propose_consent_accept_join_and_withdraw(daphne_server, team, hfu, browser):
    from playwright.sync_api import expect

    # Chromium asks for English: staff and partner pages follow the browser, youth pages stay
    # in bokmål unless the youth switches (frontend/middleware.py).

    url = daphne_server["url"]
    ingrid, youth = chatting_with_ingrid(browser, url)
    youth.fill("#text", "Jeg orker ikke skolen lenger")
    youth.press("#text", "Enter")
    pane = ingrid.locator("#panes .pane:visible")
    expect(pane.locator(".messages")).to_contain_text("orker ikke skolen")

    # Staff write the handover and show it to the youth.
    form = write_handover(pane, "warm")
    screenshot(ingrid, "handover-staff-form.png")
    form.locator("button[type=submit]").click()
    expect(form.locator(".handover-list")).to_contain_text("Helsestasjon for ungdom Tønsberg")

    # The youth reads exactly what would be shared, and says yes.
    card = youth.locator("#handovers .consent-card")
    expect(card).to_contain_text("Helsestasjon for ungdom Tønsberg")
    for text in SECTIONS.values():
        expect(card.locator("dl.shared")).to_contain_text(text)
    screenshot(youth, "handover-youth-consent-360px.png")
    card.locator("input[value=agree]").check()
    card.locator("input[value='16_plus']").check()
    card.locator(".consent-form button[type=submit]").click()
    expect(card.locator(".status")).not_to_be_empty()
    expect(youth.locator("#handovers .consent-card button.withdraw")).to_be_visible()
    expect(form.locator(".handover-list")).to_contain_text("sent, waiting for the service")
    expect(form.locator(".handover-list .handover-answer")).to_have_text("The youth said yes.")

    # The partner logs in, reads the summary, accepts, and joins the chat.
    kari = kari_opens_the_handover(browser, url)
    expect(kari.locator("main")).to_contain_text(SECTIONS["concern"])
    meeting = (timezone.localtime() + timedelta(days=2)).replace(hour=14, minute=0)
    kari.fill("#first-meeting-at", meeting.strftime("%Y-%m-%dT%H:%M"))
    kari.fill("#meeting-where", "Helsestasjonen, 2. etasje")
    kari.locator("form[action$='/accept'] button[type=submit]").click()
    expect(youth.locator("#handovers .consent-card .status")).to_contain_text("14:00")
    # The handover page stays open in a second tab while Kari is in the chat.
    detail = kari.context.new_page()
    detail.goto(kari.url)
    expect(detail.locator("main")).to_contain_text(SECTIONS["concern"])
    kari.locator("a", has_text="Join the chat").click()
    expect(kari.locator("#status")).to_have_attribute("data-state", "online")
    expect(youth.locator("#chat-state")).to_contain_text("Kari")
    kari.fill("#text", "Hei! Jeg er Kari fra helsestasjonen.")
    kari.press("#text", "Enter")
    expect(youth.locator("#messages")).to_contain_text("Jeg er Kari fra helsestasjonen")
    expect(pane.locator(".messages")).to_contain_text("Jeg er Kari fra helsestasjonen")
    youth.fill("#text", "Hei Kari!")
    youth.press("#text", "Enter")
    expect(kari.locator("#messages")).to_contain_text("Hei Kari!")
    expect(pane.locator(".messages")).to_contain_text("Hei Kari!")
    # Ingrid writes too: all three see the three-way conversation.
    staff_box = pane.locator(".composer textarea")
    staff_box.fill("Så fint at dere har møttes!")
    staff_box.press("Enter")
    expect(kari.locator("#messages")).to_contain_text("Så fint at dere har møttes!")
    expect(youth.locator("#messages")).to_contain_text("Så fint at dere har møttes!")
    # Kari sees the chat from when she joined, not the youth's first words.
    assert "orker ikke skolen" not in kari.locator("#messages").inner_text()
    screenshot(kari, "handover-partner-chat.png")
    screenshot(youth, "handover-youth-three-way-360px.png")

    # The youth withdraws: the partner's view closes at once.
    youth.locator("#handovers .consent-card button.withdraw").click()
    expect(kari.locator("main")).to_contain_text("withdrawn consent")
    expect(kari.locator("#messages li")).to_have_count(0)
    expect(form.locator(".handover-list")).to_contain_text("the youth withdrew consent")
    # The handover page open in the other tab puts the summary away by itself (no reload).
    expect(detail.locator(".withdrawn-notice")).to_have_text(
        "The youth has withdrawn their consent.", timeout=15_000
    )
    expect(detail.locator("main")).not_to_contain_text(SECTIONS["concern"])


def test_the_youth_asks_for_changes_staff_see_why_revise_and_the_youth_says_yes(
    daphne_server, team, hfu, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid, youth = chatting_with_ingrid(browser, url)
    pane = ingrid.locator("#panes .pane:visible")
    form = write_handover(pane, "contact")
    form.locator("button[type=submit]").click()

    # The youth starts a yes (and leaves a number), then asks for a change instead: the
    # number is not sent with it.
    card = youth.locator("#handovers .consent-card")
    expect(card.locator("dl.shared")).to_contain_text(SECTIONS["concern"])
    card.locator("input[value=agree]").check()
    card.locator("textarea[id^=contact]").fill("900 00 000")
    card.locator("input[value=change]").check()
    expect(card.locator("textarea[id^=contact]")).to_be_hidden()
    card.locator("textarea[id^=reason]").fill("Ikke skriv at jeg sover dårlig")
    card.locator(".consent-form button[type=submit]").click()
    expect(card.locator(".status")).to_contain_text("endringer")
    expect(card.locator(".consent-error")).to_have_count(0)

    # Ingrid sees the answer, the youth's own words and what to do now.
    listed = form.locator(".handover-list .handover-card")
    expect(listed.locator(".handover-answer")).to_have_text("The youth asked for changes.")
    expect(listed.locator(".handover-reason")).to_contain_text("Ikke skriv at jeg sover dårlig")
    expect(listed.locator(".handover-guidance")).to_contain_text("Ask what they want changed")
    screenshot(ingrid, "handover-staff-changes-requested.png")

    # She changes the text and shows it again; the youth reads the new text and says yes.
    listed.locator("button.revise-handover").click()
    form.locator("textarea[data-section=concern]").fill("Gruer seg til skolen hver morgen")
    form.locator("button[type=submit]").click()
    expect(listed).to_contain_text("waiting for the youth's answer")
    expect(card.locator("dl.shared")).to_contain_text("Gruer seg til skolen hver morgen")
    expect(card.locator("dl.shared")).not_to_contain_text("Sover dårlig")
    card.locator("input[value=agree]").check()
    card.locator("input[value='16_plus']").check()
    card.locator("textarea[id^=contact]").fill("900 00 000")
    card.locator(".consent-form button[type=submit]").click()
    expect(card.locator("button.withdraw")).to_be_visible()
    expect(listed).to_contain_text("sent, waiting for the service")
    expect(listed.locator(".handover-answer")).to_have_text("The youth said yes.")


def test_staff_pass_the_chat_and_the_partner_continues_and_ends_it(
    daphne_server, team, hfu, browser
):
    """Warm handover, issue 5(a): Kari joins, Ingrid lets her continue the chat; the youth is
    told in plain words who is there now, Ingrid's dashboard lets go, and Kari ends it."""
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid, youth = chatting_with_ingrid(browser, url)
    pane = ingrid.locator("#panes .pane:visible")
    form = write_handover(pane, "warm")
    form.locator("button[type=submit]").click()
    card = youth.locator("#handovers .consent-card")
    card.locator("input[value=agree]").check()
    card.locator("input[value='16_plus']").check()
    card.locator(".consent-form button[type=submit]").click()
    expect(form.locator(".handover-list")).to_contain_text("sent, waiting for the service")

    # Kari joins straight from the handover page (no answer needed for a live introduction).
    kari = kari_opens_the_handover(browser, url)
    kari.locator("a", has_text="Join the chat").click()
    expect(kari.locator("#status")).to_have_attribute("data-state", "online")
    expect(kari.locator("#end-tools")).to_be_hidden()  # Ingrid still leads the chat
    kari.fill("#text", "Hei! Jeg er Kari fra helsestasjonen.")
    kari.press("#text", "Enter")
    expect(youth.locator("#messages")).to_contain_text("Jeg er Kari fra helsestasjonen")

    # Ingrid lets Kari continue: her pane lets go, the youth reads who is there now.
    listed = pane.locator(".handover-list .handover-card")
    expect(listed.locator(".handover-joined")).to_have_text("Kari from the service is in the chat.")
    listed.locator("button.pass-handover").click()
    expect(pane.locator(".chat-state")).to_have_text(
        "Kari (Helsestasjon for ungdom Tønsberg) continues this chat. You have let go of it."
    )
    expect(pane.locator(".composer")).to_be_hidden()
    expect(youth.locator("#chat-state")).to_have_text(
        "Ingrid har gått ut av chatten. Kari fra Helsestasjon for ungdom Tønsberg fortsetter "
        "chatten med deg."
    )
    expect(kari.locator("#lead")).to_contain_text("Ingrid has left the chat")
    screenshot(youth, "handover-youth-partner-continues-360px.png")

    # The youth and Kari go on; Ingrid's dashboard no longer gets the chat.
    youth.fill("#text", "Takk, Kari. Kan vi snakke om skolen?")
    youth.press("#text", "Enter")
    expect(kari.locator("#messages")).to_contain_text("Kan vi snakke om skolen?")
    kari.fill("#text", "Ja, gjerne.")
    kari.press("#text", "Enter")
    expect(youth.locator("#messages")).to_contain_text("Ja, gjerne.")
    # Kari's page sent a read receipt: the youth sees their message was read.
    expect(
        youth.locator("#messages li.mine", has_text="Kan vi snakke").locator(".read-receipt")
    ).to_be_visible()
    assert "Kan vi snakke om skolen?" not in pane.locator(".messages").inner_text()
    screenshot(kari, "handover-partner-leads.png")

    # Kari ends the chat (two steps); the youth sees it ended.
    kari.locator("#end-chat").click()
    expect(kari.locator("#end-confirm")).to_contain_text("End the chat for the youth too?")
    kari.locator("#end-yes").click()
    expect(kari.locator("#ended")).to_have_text("The chat has ended.")
    expect(kari.locator("#text")).to_be_disabled()
    expect(youth.locator("#chat-state")).to_have_text(
        "Samtalen er avsluttet. Takk for at du tok kontakt!"
    )
