"""Accessibility (WCAG 2.1 AA) in real Chromium: axe-core (bundled by axe-playwright-python,
no network needed) runs on every youth and staff page, in the states that matter, on a phone
and on a desktop screen. A serious or critical violation fails the test with the rule, the
impact, what to do and the elements that break it. Keyboard use is checked by hand: focus is
visible on every control, the dashboard's tabs and tool panels work without a mouse, and the
transfer preview dialog closes with Escape. The message lists are live regions: a new message
is added to them once, not the whole list again. The supervisors' statistics page and the two
steps of two-factor login (the code; setting up the app the first time) are checked too."""

import json
import re

import pytest

from tests.browser import password_step, screenshot, staff_login

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 900}}
FAILING = {"serious", "critical"}


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is now (its default rules: WCAG 2.0/2.1 A and
    AA, and the best practices), with impact serious or critical."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v["impact"] in FAILING]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            target = " >> ".join(t if isinstance(t, str) else " ".join(t) for t in node["target"])
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {target}  {summary}")
    return "\n".join(lines)


def assert_accessible(page, state: str) -> None:
    violations = axe_violations(page)
    assert not violations, (
        f"{state} ({page.url}): {len(violations)} serious/critical axe violation(s)\n"
        + describe(violations)
    )


def new_page(browser, size):
    return browser.new_context(viewport=SIZES[size]).new_page()


def staff_page(browser, url, size, username):
    page = new_page(browser, size)
    page.goto(url + "/staff/login/")
    return page, lambda: staff_login(page, url, username)


class HeldMessages:
    """Sits in the page's WebSocket to the server and, while `hold` is set, keeps the chat
    messages the page sends (so they stay pending on screen) until `release()`."""

    def __init__(self, page):
        self.hold = False
        self.held: list[str] = []
        self.server = None
        page.route_web_socket("**/ws/youth/", self.route)

    def route(self, ws):
        self.server = ws.connect_to_server()  # frames from the server pass through as they are
        ws.on_message(self.to_server)

    def to_server(self, message):
        if self.hold and json.loads(message).get("type") == "message":
            self.held.append(message)
        else:
            self.server.send(message)

    def release(self):
        self.hold = False
        for message in self.held:
            self.server.send(message)
        self.held.clear()


@pytest.fixture(params=list(SIZES))
def size(request):
    return request.param


def test_the_youth_start_page_in_bokmal_and_english(daphne_server, team, browser, size):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    page = new_page(browser, size)
    page.goto(url + "/")
    expect(page.locator("#people .card")).to_have_count(2)
    expect(page.locator("#roles button.choose")).not_to_have_count(0)
    assert_accessible(page, "youth start (nb)")
    screenshot(page, f"a11y-youth-start-nb-{size}.png")

    # Filtering by interest highlights the matching person.
    page.locator("#interest-filter input[value=music]").check()
    expect(page.locator("#people .card.match")).to_have_count(1)
    # The code section opened, with an error shown.
    page.locator("#resume-section summary").click()
    page.fill("#resume-code", "AAAA-BBBB-CCCC")
    page.click("#resume button[type=submit]")
    expect(page.locator("#resume-error")).not_to_be_empty()
    assert_accessible(page, "youth start with a filter and the code section open (nb)")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#people .card")).to_have_count(2)
    assert_accessible(page, "youth start (en)")
    screenshot(page, f"a11y-youth-start-en-{size}.png")


def test_a_whole_chat_on_the_youth_page_and_the_dashboard(daphne_server, team, browser, size):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    staff, login = staff_page(browser, url, size, "ingrid")
    assert_accessible(staff, "staff login")
    screenshot(staff, f"a11y-staff-login-{size}.png")
    staff.fill("#id_username", "ingrid")
    staff.fill("#id_password", "wrong password")
    staff.click("button[type=submit]")
    expect(staff.locator(".error")).to_be_visible()
    assert_accessible(staff, "staff login with an error")

    login()
    expect(staff.locator("#shift tr")).not_to_have_count(0)
    assert_accessible(staff, "staff dashboard, empty")
    screenshot(staff, f"a11y-staff-empty-{size}.png")

    youth = new_page(browser, size)
    hold = HeldMessages(youth)
    youth.goto(url + "/")
    youth.click("#start-chat")
    expect(youth.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    assert_accessible(youth, "youth queued")
    screenshot(youth, f"a11y-youth-queued-{size}.png")

    expect(staff.locator("#queue li")).to_have_count(1)
    assert_accessible(staff, "staff dashboard with a queue entry")
    screenshot(staff, f"a11y-staff-queue-{size}.png")

    staff.locator("#queue li button.accept").click()
    pane = staff.locator("#panes .pane:visible")
    expect(pane.locator(".chat-state")).not_to_be_empty()
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid er her")
    youth.fill("#text", "Hei, jeg lurer på noe")
    youth.press("#text", "Enter")
    expect(pane.locator(".msg.theirs .text")).to_have_text(["Hei, jeg lurer på noe"])
    pane.locator(".composer textarea").fill("Hei! Så fint at du skriver. Hva lurer du på?")
    pane.locator(".composer textarea").press("Enter")
    expect(youth.locator("#messages .msg.theirs .text")).to_have_text(
        ["Hei! Så fint at du skriver. Hva lurer du på?"]
    )
    expect(youth.locator("#messages .read-receipt")).to_be_visible()
    expect(pane.locator(".read-receipt")).to_be_visible()
    assert_accessible(youth, "youth chatting, with a message from staff")
    assert_accessible(staff, "staff dashboard, a conversation open")

    # From here on, record what is added to the youth's message list (an aria-live region):
    # each message must be added once, not the whole list again on every render.
    youth.evaluate(
        """() => {
            window.addedToList = [];
            new MutationObserver((records) => {
                for (const record of records)
                    for (const node of record.addedNodes)
                        if (node.nodeType === 1) window.addedToList.push(node.tagName);
            }).observe(document.getElementById("messages"), { childList: true, subtree: true });
        }"""
    )

    # A conversation longer than its box: the message lists scroll (and must be focusable).
    long_text = "\n".join(f"Linje {n}: litt mer å lese." for n in range(1, 31))
    pane.locator(".composer textarea").fill(long_text)
    pane.locator(".composer textarea").press("Enter")
    expect(youth.locator("#messages .msg.theirs")).to_have_count(2)
    for page, selector in ((youth, "#messages"), (staff, "#panes .pane:visible .messages")):
        assert page.locator(selector).evaluate("list => list.scrollHeight > list.clientHeight")
    assert_accessible(youth, "youth chatting, a long conversation")
    screenshot(youth, f"a11y-youth-chat-{size}.png")
    assert_accessible(staff, "staff dashboard, a long conversation")
    screenshot(staff, f"a11y-staff-conversation-{size}.png")

    # A message not yet confirmed by the server shows as pending (and must stay readable).
    hold.hold = True
    youth.fill("#text", "Er du der?")
    youth.press("#text", "Enter")
    expect(youth.locator("#messages .msg.pending")).to_have_count(1)
    assert_accessible(youth, "youth with a pending message")
    screenshot(youth, f"a11y-youth-pending-{size}.png")
    hold.release()
    expect(youth.locator("#messages .msg.pending")).to_have_count(0)
    expect(youth.locator("#messages .msg.mine .text").last).to_have_text("Er du der?")
    expect(youth.locator("#messages .msg").last.locator(".read-receipt")).to_be_visible()
    # The long message and the pending one were added; confirming it changed it in place;
    # the read receipt moved under the newest message.
    assert youth.evaluate("window.addedToList") == ["LI", "LI", "SPAN"]
    expect(pane.locator(".msg.theirs .text").last).to_have_text("Er du der?")

    # Each tool panel open in turn.
    pane.locator(".show-notes").click()
    expect(pane.locator(".notes-panel")).to_be_visible()
    pane.locator(".note-form textarea").fill("Første samtale")
    pane.locator(".note-form button[type=submit]").click()
    expect(pane.locator(".notes .note")).to_have_count(1)
    assert_accessible(staff, "staff dashboard, notes panel")
    screenshot(staff, f"a11y-staff-notes-{size}.png")

    pane.locator(".show-transfer").click()
    expect(pane.locator(".transfer-panel")).to_be_visible()
    pane.locator(".transfer-panel button[type=submit]").click()  # nothing chosen: an error
    expect(pane.locator(".transfer-error")).not_to_be_empty()
    assert_accessible(staff, "staff dashboard, transfer panel with an error")
    screenshot(staff, f"a11y-staff-transfer-{size}.png")

    pane.locator(".end").click()
    expect(pane.locator(".end-panel")).to_be_visible()
    pane.locator(".end-tags input[value=stress]").check()
    pane.locator(".end-panel input[value=yellow]").check()
    pane.locator(".ask-feedback").check()
    assert_accessible(staff, "staff dashboard, end panel")
    screenshot(staff, f"a11y-staff-end-{size}.png")

    pane.locator(".end-panel button[type=submit]").click()
    expect(youth.locator("#feedback")).to_be_visible()
    expect(pane.locator(".close-tab")).to_be_visible()
    assert_accessible(youth, "youth after the chat, feedback form")
    screenshot(youth, f"a11y-youth-feedback-{size}.png")
    assert_accessible(staff, "staff dashboard, conversation ended")

    youth.locator("#feedback input[name=useful][value='5']").check()
    youth.locator("#feedback button[type=submit]").click()
    expect(youth.locator("#feedback-thanks")).to_be_visible()
    assert_accessible(youth, "youth after sending feedback")


def test_the_drop_in_page_and_the_kiosk(daphne_server, team, browser, size):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    sara, login = staff_page(browser, url, size, "sara")
    login()
    sara.fill("#my-room", "Rom 4")
    phone = new_page(browser, size)
    phone.goto(url + "/dropin/tonsberg/")
    expect(phone.locator("#people .card")).to_have_count(2)
    assert_accessible(phone, "drop-in phone page")
    screenshot(phone, f"a11y-dropin-{size}.png")
    phone.locator("#people .card", has_text="Sara").locator("button.choose").click()
    expect(phone.locator("#ticket")).to_be_visible()
    assert_accessible(phone, "drop-in phone page with a ticket")
    screenshot(phone, f"a11y-dropin-ticket-{size}.png")

    # Sara calls the ticket: the phone says where to go, the pane waits for the youth.
    sara.get_by_role("button", name="Call B-1").click()
    expect(phone.locator("#chat-state")).to_contain_text("Din tur! Gå til Rom 4")
    expect(sara.locator("#panes .pane:visible .arrived")).to_be_visible()
    assert_accessible(phone, "drop-in phone page, called")
    screenshot(phone, f"a11y-dropin-called-{size}.png")
    assert_accessible(sara, "staff dashboard, a drop-in ticket called")

    # Someone who is not safe: the crisis numbers and note for the youth, an alert for staff.
    youth = new_page(browser, size)
    youth.goto(url + "/")
    youth.click("#not-safe")
    expect(youth.locator("#crisis-sent")).to_be_visible()
    assert_accessible(youth, "youth who said they are not safe")
    screenshot(youth, f"a11y-youth-not-safe-{size}.png")
    expect(sara.locator("#crisis-banner")).to_be_visible()
    expect(sara.locator("#queue li.crisis")).to_have_count(1)
    assert_accessible(sara, "staff dashboard with a crisis alert")
    screenshot(sara, f"a11y-staff-crisis-{size}.png")

    kiosk = new_page(browser, size)
    kiosk.goto(url + "/dropin/tonsberg/kiosk/")
    expect(kiosk.locator("#kiosk-people .card")).to_have_count(2)
    assert_accessible(kiosk, "kiosk")
    screenshot(kiosk, f"a11y-kiosk-{size}.png")
    kiosk.get_by_role("button", name="Første ledige").click()
    expect(kiosk.locator("#kiosk-ticket")).not_to_be_empty()
    expect(kiosk.locator("#kiosk-qr svg")).to_be_visible()
    assert_accessible(kiosk, "kiosk with a ticket")
    screenshot(kiosk, f"a11y-kiosk-ticket-{size}.png")


def test_the_transfer_preview_dialog(daphne_server, team, browser, size):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid, login_ingrid = staff_page(browser, url, "desktop", "ingrid")
    login_ingrid()
    sara, login_sara = staff_page(browser, url, size, "sara")
    login_sara()

    youth = new_page(browser, "phone")
    youth.goto(url + "/")
    youth.locator("#people .card", has_text="Ingrid").locator("button.choose").click()
    ingrid.locator("#queue li button.accept").click()
    youth.fill("#text", "Jeg sover dårlig")
    youth.press("#text", "Enter")
    pane = ingrid.locator("#panes .pane:visible")
    expect(pane.locator(".msg.theirs .text")).to_have_text(["Jeg sover dårlig"])
    pane.locator(".show-notes").click()
    pane.locator(".note-form textarea").fill("Eksamensstress")
    pane.locator(".note-form button[type=submit]").click()
    expect(pane.locator(".notes .note")).to_have_count(1)

    ingrid.locator("#refresh-shift").click()
    expect(ingrid.locator("#shift tr", has_text="Sara")).to_have_count(1)
    pane.locator(".show-transfer").click()
    pane.locator(".transfer-target").select_option(label="Sara (0 / 3)")
    pane.locator(".transfer-note").fill("Trenger søvnråd.")
    pane.locator(".transfer-panel button[type=submit]").click()
    expect(pane.locator(".transfer-pending")).to_be_visible()

    offer = sara.locator("#transfers li")
    expect(offer).to_have_count(1)
    assert_accessible(sara, "staff dashboard with a transfer offer")
    assert_accessible(ingrid, "staff dashboard, a transfer pending")
    offer.locator("button.preview").click()
    dialog = sara.locator("#preview-dialog")
    expect(dialog.locator(".preview-messages")).to_contain_text("Jeg sover dårlig")
    expect(dialog.locator(".preview-notes")).to_contain_text("Eksamensstress")
    assert_accessible(sara, "transfer preview dialog")
    screenshot(sara, f"a11y-staff-transfer-preview-{size}.png")

    # The dialog closes with Escape, and the offer is still there to decide on.
    sara.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    offer.locator("button.preview").click()
    expect(dialog).to_be_visible()
    dialog.locator(".preview-accept").click()
    expect(sara.locator("#tabs .tab")).to_have_count(1)
    expect(youth.locator("#chat-state")).to_contain_text("Sara")
    assert_accessible(sara, "staff dashboard after accepting a transfer")
    assert_accessible(ingrid, "staff dashboard, conversation handed over")


def test_the_youth_page_works_with_the_keyboard_alone(daphne_server, team, browser):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    page = new_page(browser, "phone")
    page.goto(url + "/")
    expect(page.locator("#people .card")).to_have_count(2)

    # Tab goes through every control in order, each with a visible focus ring.
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement;
                const style = getComputedStyle(el);
                return {
                    id: el.id, cls: el.className, tag: el.tagName, text: el.textContent.trim(),
                    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
                };
            }"""
        )
        assert focused["outline"], f"no visible focus on {focused}"
        reached.append(focused)
        if focused["id"] == "not-safe":
            break
    ids = [f["id"] for f in reached]
    assert "quick-exit" in ids[:3], reached  # the way out comes first
    assert {"start-chat", "not-safe"} <= set(ids), ids
    texts = [f["text"] for f in reached]
    assert any(t.startswith("Snakk med Ingrid") for t in texts), texts
    assert (
        sum(1 for f in reached if f["tag"] == "INPUT")
        == page.locator("#interest-filter input").count()
    )

    # Start a chat and write with the keyboard only.
    page.locator("#start-chat").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    page.locator("#text").focus()
    page.keyboard.type("hei")
    page.keyboard.press("Enter")
    expect(page.locator("#messages .msg:not(.pending) .text")).to_have_text(["hei"])
    # The message list can take focus (to scroll it), with a visible ring.
    page.locator("#text").focus()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "messages"


def test_the_dashboard_tabs_and_tools_work_with_the_keyboard(daphne_server, team, browser):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    staff, login = staff_page(browser, url, "desktop", "ingrid")
    login()
    for _ in range(2):
        youth = new_page(browser, "phone")
        youth.goto(url + "/")
        youth.locator("#people .card", has_text="Ingrid").locator("button.choose").click()
        expect(youth.locator("#chat-state")).to_contain_text("Ingrid")
    expect(staff.locator("#queue li")).to_have_count(2)
    staff.locator("#take-next").focus()
    staff.keyboard.press("Enter")
    staff.keyboard.press("Enter")
    tabs = staff.locator("#tabs [role=tab]")
    expect(tabs).to_have_count(2)

    # The ARIA tabs pattern: one tab stop, arrow keys move, each tab controls its pane.
    first, second = tabs.nth(0), tabs.nth(1)
    selected = staff.locator("#tabs [role=tab][aria-selected=true]")
    selected.focus()
    start = selected.get_attribute("id")
    assert [tabs.nth(i).get_attribute("tabindex") for i in range(2)].count("0") == 1
    staff.keyboard.press("ArrowRight")
    expect(selected).not_to_have_attribute("id", start)
    assert staff.evaluate("document.activeElement.getAttribute('aria-selected')") == "true"
    pane_id = selected.get_attribute("aria-controls")
    expect(staff.locator(f"#{pane_id}")).to_be_visible()
    assert staff.locator(f"#{pane_id}").get_attribute("aria-labelledby") == selected.get_attribute(
        "id"
    )
    staff.keyboard.press("ArrowRight")  # wraps around
    expect(selected).to_have_attribute("id", start)
    staff.keyboard.press("End")
    expect(selected).to_have_attribute("id", second.get_attribute("id"))
    staff.keyboard.press("Home")
    expect(selected).to_have_attribute("id", first.get_attribute("id"))

    # A tool panel opens from the keyboard, says so, takes focus; Cancel gives focus back.
    pane = staff.locator(f"#{selected.get_attribute('aria-controls')}")
    transfer = pane.locator(".show-transfer")
    transfer.focus()
    staff.keyboard.press("Enter")
    expect(transfer).to_have_attribute("aria-expanded", "true")
    expect(pane.locator(".transfer-target")).to_be_focused()
    pane.locator(".transfer-panel .cancel").focus()
    staff.keyboard.press("Enter")
    expect(pane.locator(".transfer-panel")).to_be_hidden()
    expect(transfer).to_have_attribute("aria-expanded", "false")
    expect(transfer).to_be_focused()


# -- the supervisors' statistics page ----------------------------------------------------------


def test_the_statistics_page(daphne_server, simulated, browser):
    from playwright.sync_api import expect

    from youthhub.staff.management.commands.seed_demo import DEMO_PASSWORD

    start, end, _ = simulated
    url = daphne_server["url"]
    for size in SIZES:
        mona = new_page(browser, size)
        staff_login(mona, url, "mona", DEMO_PASSWORD)
        mona.goto(f"{url}/supervisor/stats/?start={start}&end={end}")
        expect(mona.locator("#now-staff")).not_to_have_text("…")
        expect(mona.locator("img.chart")).not_to_have_count(0)
        assert_accessible(mona, f"statistics with figures ({size})")
        screenshot(mona, f"a11y-stats-{size}.png")

        # The period the wrong way round: an error, no figures.
        mona.goto(f"{url}/supervisor/stats/?start={end}&end={start}")
        expect(mona.locator(".error")).to_be_visible()
        assert_accessible(mona, f"statistics with an error ({size})")
        mona.context.close()


# -- two-factor login: the code, and setting up the app the first time ---------------------------


@pytest.fixture
def sara_enrolled(team):
    """Sara has an authenticator app (a confirmed device); Ingrid has none yet."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    _, sara = team
    TOTPDevice.objects.create(user=sara, name="youthhub", confirmed=True)


def test_the_two_factor_login_steps(two_factor_server, sara_enrolled, browser):
    from playwright.sync_api import expect

    url = two_factor_server
    for size in SIZES:
        # First login: set up the app (QR code, the key to type instead), then a wrong code.
        ingrid = new_page(browser, size)
        password_step(ingrid, url, "ingrid")
        expect(ingrid).to_have_url(re.compile(r"/staff/login/setup/"))
        expect(ingrid.locator(".qr.totp svg")).to_be_visible()
        assert_accessible(ingrid, f"two-factor setup ({size})")
        screenshot(ingrid, f"a11y-staff-2fa-setup-{size}.png")
        ingrid.locator("details summary").click()
        ingrid.fill("#id_code", "000000")
        ingrid.click("main button[type=submit]")
        expect(ingrid.locator(".error")).to_be_visible()
        assert_accessible(ingrid, f"two-factor setup, a wrong code, the key shown ({size})")
        ingrid.context.close()

        # Enrolled already: the code from the app, then a wrong one.
        sara = new_page(browser, size)
        password_step(sara, url, "sara")
        expect(sara).to_have_url(re.compile(r"/staff/login/code/"))
        assert_accessible(sara, f"two-factor code ({size})")
        screenshot(sara, f"a11y-staff-2fa-code-{size}.png")
        sara.fill("#id_code", "000000")
        sara.click("main button[type=submit]")
        expect(sara.locator(".error")).to_be_visible()
        assert_accessible(sara, f"two-factor code, a wrong code ({size})")
        sara.context.close()
