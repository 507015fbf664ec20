"""Sound and desktop notifications on the dashboard, in Chromium: opt-in (the checkbox), the
crisis banner whatever the choice, and a neutral text that says nothing about a youth.

An init script records every tone (an oscillator started) and every `new Notification(...)`
the page makes, and lets the test say whether the page is in view (headless Chromium always
is, and desktop notifications are only for a page out of view)."""

import pytest

from tests.browser import staff_login

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}

RECORDER = """
window.recorded = { tones: [], notifications: [] };
window.pageHidden = false;
Object.defineProperty(Document.prototype, "visibilityState", {
  configurable: true,
  get: () => (window.pageHidden ? "hidden" : "visible"),
});
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.recorded.tones.push(this.frequency.value);
  return start.apply(this, args);
};
const Real = window.Notification;
function Recording(title, options = {}) {
  window.recorded.notifications.push({ title, body: options.body, tag: options.tag });
  return new Real(title, options);
}
Object.defineProperty(Recording, "permission", { get: () => Real.permission });
Recording.requestPermission = (...args) => Real.requestPermission(...args);
window.Notification = Recording;
"""

# The dashboard follows the browser's language (English here): frontend/views.py `staff`,
# work.notify_*.
NEW_REQUEST = "New request in the queue"
NOT_SAFE = "Someone is not safe right now"


def dashboard(browser, url):
    context = browser.new_context(viewport=DESKTOP, permissions=["notifications"])
    context.add_init_script(RECORDER)
    page = context.new_page()
    staff_login(page, url, "ingrid")
    assert page.evaluate("Notification.permission") == "granted"
    return page


def recorded(page) -> dict:
    return page.evaluate("window.recorded")


def youth_asks(browser, url, *, crisis=False):
    """A new youth asks for the first available, or says they are not safe. Returns the page."""
    from playwright.sync_api import expect

    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(url + "/")
    if crisis:
        page.click("#not-safe")
        expect(page.locator("#crisis-sent")).to_be_visible()
    else:
        page.click("#start-chat")
        expect(page.locator("#chat-state")).to_contain_text("i køen")
    page.fill("#text", "Mamma og pappa krangler hele tiden")
    page.press("#text", "Enter")
    expect(page.locator("#messages .msg:not(.pending)")).to_have_count(1)
    return page


def aliases(staff) -> list[str]:
    return [
        li.split(" · ")[0] for li in staff.locator("#queue li > span:first-child").all_inner_texts()
    ]


def test_without_the_opt_in_a_crisis_shows_the_banner_but_makes_no_sound(
    daphne_server, team, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    staff = dashboard(browser, url)
    expect(staff.locator("#notify")).not_to_be_checked()
    staff.evaluate("window.pageHidden = true")

    youth_asks(browser, url)
    expect(staff.locator("#queue li")).to_have_count(1)
    youth_asks(browser, url, crisis=True)
    expect(staff.locator("#crisis-banner")).to_be_visible()
    expect(staff.locator("#crisis-banner")).to_contain_text("not safe right now")
    expect(staff.locator("#queue li.crisis")).to_have_count(1)
    assert recorded(staff) == {"tones": [], "notifications": []}


def test_with_the_opt_in_a_new_request_and_a_crisis_notify_with_a_neutral_text(
    daphne_server, team, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    staff = dashboard(browser, url)
    staff.check("#notify")
    assert staff.evaluate("localStorage.getItem('yh.staff.notify')") == "1"

    # In view: a tone, no desktop notification.
    youth_asks(browser, url)
    expect(staff.locator("#queue li")).to_have_count(1)
    assert recorded(staff) == {"tones": [520], "notifications": []}

    # Out of view: a tone and a desktop notification for each, crisis louder.
    staff.evaluate("window.pageHidden = true")
    youth_asks(browser, url)
    expect(staff.locator("#queue li")).to_have_count(2)
    youth_asks(browser, url, crisis=True)
    expect(staff.locator("#crisis-banner")).to_be_visible()
    expect(staff.locator("#queue li.crisis")).to_have_count(1)
    expect(staff.locator("#queue li")).to_have_count(3)
    seen = recorded(staff)
    assert seen["tones"] == [520, 520, 880]
    assert seen["notifications"] == [
        {"title": "youthhub", "body": NEW_REQUEST, "tag": "yh-queue"},
        {"title": "youthhub", "body": NOT_SAFE, "tag": "yh-urgent"},
    ]
    # Nothing about a youth: no alias, no words they wrote (the fixed text above has no topic).
    shown = " ".join(n["title"] + " " + n["body"] for n in seen["notifications"])
    names = aliases(staff)
    assert len(names) == 3 and not any(name in shown for name in names)
    assert "krangler" not in shown

    # The choice is kept in this browser: after a reload it is still on.
    staff.reload()
    expect(staff.locator("#status")).to_have_text("Online")
    expect(staff.locator("#notify")).to_be_checked()
