"""The youth page in real Chromium: quick exit, the installable app (manifest + service
worker), English through the language switcher, and a 360 px wide phone screen."""

import json

import pytest

from tests.browser import screenshot, staff_login

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXIT_URL = "https://www.yr.no/"  # settings.YOUTHHUB_QUICK_EXIT_URL's default; no internet here
EARLIER_URL = "https://search.example/?q=weather"
PHONE = {"width": 360, "height": 740}


def neutral_page(route):
    route.fulfill(
        status=200,
        content_type="text/html",
        body="<!doctype html><title>Weather</title><h1>Weather</h1>",
    )


def app_storage(page) -> dict:
    return page.evaluate(
        """async () => ({
            local: localStorage.length,
            session: sessionStorage.length,
            caches: window.caches ? (await caches.keys()).length : 0,
            workers: (await navigator.serviceWorker.getRegistrations()).length,
        })"""
    )


def test_quick_exit_ends_the_chat_clears_the_browser_and_back_does_not_return(
    daphne_server, team, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    staff = browser.new_context().new_page()
    staff_login(staff, url, "ingrid")

    context = browser.new_context(viewport=PHONE)
    context.route("https://www.yr.no/**", neutral_page)
    context.route("https://search.example/**", neutral_page)
    page = context.new_page()
    page.goto(EARLIER_URL)  # where the youth came from: Back should lead there
    page.goto(url + "/")
    expect(page.locator("#quick-exit")).to_be_visible()
    page.click("#start-chat")
    expect(page.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    expect(staff.locator("#queue li")).to_have_count(1)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.locator("#text").fill("dette skal ingen se")
    page.locator("#text").press("Enter")
    before = app_storage(page)
    assert before["local"] > 0 and before["caches"] > 0 and before["workers"] == 1
    assert any(c["name"] == "csrftoken" for c in context.cookies(url))

    page.click("#quick-exit")
    expect(page).to_have_url(EXIT_URL)
    expect(page.locator("h1")).to_have_text("Weather")
    # The conversation ended on the server: it left Ingrid's queue.
    expect(staff.locator("#queue li")).to_have_count(0)
    # Nothing of the site is left in the browser: storage, caches, worker, readable cookies.
    assert context.cookies(url) == []
    leftover = context.new_page()
    leftover.goto(url + "/static/youthhub/icons/icon.svg")  # same origin, none of our scripts
    assert app_storage(leftover) == {"local": 0, "session": 0, "caches": 0, "workers": 0}
    leftover.close()

    # Back goes to where the youth was before, not to the chat.
    page.go_back()
    expect(page).to_have_url(EARLIER_URL)
    page.go_forward()
    expect(page).to_have_url(EXIT_URL)


def test_escape_twice_is_a_quick_exit_too(daphne_server, team, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=PHONE)
    context.route("https://www.yr.no/**", neutral_page)
    page = context.new_page()
    page.goto(daphne_server["url"] + "/")
    page.click("#start-chat")
    expect(page.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    page.keyboard.press("Escape")
    page.wait_for_timeout(1500)  # two presses far apart are not an exit
    expect(page.locator("#chat-state")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    expect(page).to_have_url(EXIT_URL)


def test_the_app_installs_a_service_worker_that_caches_the_shell_and_never_the_api(
    daphne_server, team, browser
):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(url + "/")
    script = page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)")
    assert script == url + "/sw.js"

    href = page.locator('link[rel="manifest"]').get_attribute("href")
    response = page.request.get(url + href)
    assert response.ok and response.headers["content-type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["name"] == "Ung chat" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        assert page.request.get(url + icon["src"]).ok

    # A whole chat goes through the page under the worker's control ...
    page.reload()
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    page.click("#start-chat")
    expect(page.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    page.locator("#text").fill("sjiraff-4711")
    page.locator("#text").press("Enter")
    expect(page.locator("#messages .msg:not(.pending) .text")).to_have_text(["sjiraff-4711"])
    page.locator("summary").click()
    page.click("#show-code")
    expect(page.locator("#my-code")).not_to_be_empty()
    # ... and the cache holds the shell only: no /api/ answer, nothing with the message in it.
    cached = page.evaluate(
        """async () => {
            const out = [];
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const request of await cache.keys()) {
                    const body = await (await cache.match(request)).text();
                    out.push({ url: new URL(request.url).pathname, secret: body.includes("sjiraff-4711") });
                }
            }
            return out;
        }"""
    )
    paths = {entry["url"] for entry in cached}
    assert "/" in paths and "/static/youthhub/js/youth.js" in paths
    assert all(p == "/" or p == "/manifest.webmanifest" or p.startswith("/static/") for p in paths)
    assert not any(entry["secret"] for entry in cached)

    # Offline, the app still starts (from the shell); the chat comes back with the network.
    context.set_offline(True)
    page.reload()
    expect(page.locator("#quick-exit")).to_be_visible()
    expect(page.locator("#status")).to_have_attribute("data-state", "offline")
    context.set_offline(False)
    expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=15000)
    expect(page.locator("#messages .msg .text")).to_have_text(["sjiraff-4711"])


def test_the_language_switcher_turns_the_youth_page_into_english(daphne_server, team, browser):
    from playwright.sync_api import expect

    url = daphne_server["url"]
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.locator("#start-title")).to_have_text("Snakk med noen – anonymt")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#start-title")).to_have_text("Talk to someone – anonymously")
    expect(page.locator("#about-title")).to_have_text("About anonymity")
    expect(page.locator("#quick-exit")).to_have_text("Exit this page")
    expect(page.locator("#people .card").first).to_contain_text("Psychologist")
    screenshot(page, "youth-start-360px-en.png")
    page.click("#start-chat")
    expect(page.locator("#chat-state")).to_contain_text("You are number 1 in the queue")
    # The cookie holds the choice for the rest of the visit; switching back works the same way.
    page.reload()
    expect(page.locator("#chat-state")).to_contain_text("You are number 1 in the queue")
    page.get_by_role("button", name="Norsk").click()
    expect(page.locator("#chat-state")).to_contain_text("Du er nummer 1 i køen")


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_a_360px_phone_never_scrolls_sideways(daphne_server, team, browser, lang):
    from playwright.sync_api import expect

    url = daphne_server["url"]

    def phone():
        context = browser.new_context(viewport=PHONE)
        context.add_cookies([{"name": "django_language", "value": lang, "url": url}])
        return context.new_page()

    def assert_fits(page, name):
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (name, width)
        screenshot(page, name)

    page = phone()
    page.goto(url + "/")
    expect(page.locator("#people .card")).to_have_count(2)
    assert_fits(page, f"youth-start-360px-{lang}.png")
    page.click("#start-chat")
    expect(page.locator("#chat-state")).not_to_be_empty()
    page.locator("#text").fill("x" * 300)  # one long word
    page.locator("#text").press("Enter")
    expect(page.locator("#messages .msg")).to_have_count(1)
    assert_fits(page, f"youth-chat-360px-{lang}.png")

    page = phone()  # a new visitor: the drop-in page starts with the choice of people
    page.goto(url + "/dropin/tonsberg/")
    expect(page.locator("#people .card")).to_have_count(2)
    assert_fits(page, f"youth-dropin-360px-{lang}.png")
    # The quick exit is on screen at the top, without scrolling.
    box = page.locator("#quick-exit").bounding_box()
    assert box["y"] < 100 and box["x"] + box["width"] <= PHONE["width"], json.dumps(box)


def test_the_kiosk_goes_back_to_bokmal_for_the_next_person(daphne_server, team, browser):
    from playwright.sync_api import expect

    kiosk = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    kiosk.goto(daphne_server["url"] + "/dropin/tonsberg/kiosk/")
    kiosk.get_by_role("button", name="English").click()
    expect(kiosk.locator("#kiosk-title")).to_have_text("Who do you want to talk to?")
    kiosk.get_by_role("button", name="First available").click()
    expect(kiosk.locator("#kiosk-wait")).to_contain_text("You are number 1 in the queue.")
    kiosk.get_by_role("button", name="Done").click()
    expect(kiosk.locator("#kiosk-title")).to_have_text("Hvem vil du snakke med?")
    expect(kiosk.locator("html")).to_have_attribute("lang", "nb")


def test_the_kiosk_has_the_crisis_numbers_on_every_screen_and_starts_over(
    daphne_server, team, browser
):
    """A shared tablet: the numbers stay on screen whatever the kiosk shows, one tap from the
    top; "Start over" leaves nothing of the last person (ticket, QR code, language)."""
    from playwright.sync_api import expect

    kiosk = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    kiosk.goto(daphne_server["url"] + "/dropin/tonsberg/kiosk/")
    crisis = kiosk.locator("#crisis")

    def numbers_on_screen(state):
        expect(crisis).to_be_visible()
        for number in ("113", "112", "116 111", "116 123"):
            link = crisis.get_by_role("link", name=number, exact=True)
            expect(link).to_be_visible()
            assert link.get_attribute("href") == "tel:" + number.replace(" ", ""), state

    numbers_on_screen("choosing")
    kiosk.get_by_role("link", name="Akutt hjelp").click()
    expect(crisis).to_be_in_viewport()

    kiosk.get_by_role("button", name="English").click()
    kiosk.get_by_role("button", name="First available").click()
    expect(kiosk.locator("#kiosk-ticket")).not_to_be_empty()
    expect(kiosk.locator("#kiosk-qr svg")).to_be_visible()
    numbers_on_screen("a ticket on screen")
    expect(crisis).to_contain_text("Tell someone who works here")

    kiosk.get_by_role("button", name="Start over").click()
    expect(kiosk.locator("html")).to_have_attribute("lang", "nb")
    expect(kiosk.locator("#kiosk-title")).to_have_text("Hvem vil du snakke med?")
    expect(kiosk.locator("#taken")).to_be_hidden()
    expect(kiosk.locator("#kiosk-ticket")).to_be_empty()
    expect(kiosk.locator("#kiosk-qr")).to_be_empty()
    numbers_on_screen("after starting over")

    # In bokmål too (no language to reset): the ticket is gone from the screen at once.
    kiosk.get_by_role("button", name="Første ledige").click()
    expect(kiosk.locator("#kiosk-ticket")).not_to_be_empty()
    kiosk.get_by_role("button", name="Begynn på nytt").click()
    expect(kiosk.locator("#choose")).to_be_visible()
    expect(kiosk.locator("#taken")).to_be_hidden()
    expect(kiosk.locator("#kiosk-ticket")).to_be_empty()
    expect(kiosk.locator("#kiosk-wait")).to_be_empty()
    expect(kiosk.locator("#kiosk-qr")).to_be_empty()
    screenshot(kiosk, "kiosk-crisis-numbers.png")


class Sleep:
    """Sits in the youth page's WebSocket like the phone's radio: `sleep()` cuts the socket and
    every new one at once (and takes the browser offline), `wake()` lets them through again.
    Records the frames each way."""

    def __init__(self, context, page):
        self.context, self.asleep = context, False
        self.sockets, self.sent, self.received = [], [], []
        page.route_web_socket("**/ws/youth/", self.route)

    def route(self, ws):
        if self.asleep:
            ws.close(code=1001)
            return
        server = ws.connect_to_server()
        self.sockets.append((ws, server))
        ws.on_message(lambda message: (self.sent.append(json.loads(message)), server.send(message)))
        server.on_message(
            lambda message: (self.received.append(json.loads(message)), ws.send(message))
        )

    def sleep(self):
        self.asleep = True
        self.context.set_offline(True)
        for ws, server in self.sockets:
            server.close()
            ws.close(code=1001)
        self.sockets.clear()
        self.sent.clear()
        self.received.clear()

    def wake(self):
        self.asleep = False
        self.context.set_offline(False)


def test_after_the_phone_slept_the_page_fills_the_gap_without_a_reload(
    daphne_server, team, browser
):
    """The socket died while the phone slept and staff kept writing: back online, the page
    reconnects by itself, says what it has seen (`last_seq`), and shows every message once, in
    order. A message the youth wrote while offline is sent once, too."""
    from playwright.sync_api import expect

    url = daphne_server["url"]
    ingrid = browser.new_context().new_page()
    staff_login(ingrid, url, "ingrid")
    context = browser.new_context(viewport=PHONE)
    youth = context.new_page()
    radio = Sleep(context, youth)
    youth.goto(url + "/")
    youth.locator("#people .card", has_text="Ingrid").locator("button.choose").click()
    ingrid.locator("#queue li button.accept").click()
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid er her")
    youth.fill("#text", "Hei, er du der?")
    youth.press("#text", "Enter")
    pane = ingrid.locator("#panes .pane:visible")
    expect(pane.locator(".msg.theirs .text")).to_have_text(["Hei, er du der?"])
    pane.locator(".composer textarea").fill("Ja, jeg er her.")
    pane.locator(".composer textarea").press("Enter")
    shown = youth.locator("#messages .msg .text")
    expect(shown).to_have_text(["Hei, er du der?", "Ja, jeg er her."])
    youth.evaluate("window.sameDocument = true")  # gone if the page reloads

    radio.sleep()
    expect(youth.locator("#status")).to_have_attribute("data-state", "offline")
    written = [f"Melding {n} mens mobilen sov" for n in range(1, 4)]
    for text in written:
        pane.locator(".composer textarea").fill(text)
        pane.locator(".composer textarea").press("Enter")
    expect(pane.locator(".msg.mine:not(.pending)")).to_have_count(4)  # stored on the server
    youth.fill("#text", "Sorry, mobilen døde")
    youth.press("#text", "Enter")
    expect(youth.locator("#messages .msg.pending")).to_have_count(1)
    assert radio.received == []  # nothing reached the page meanwhile

    radio.wake()
    expect(youth.locator("#status")).to_have_attribute("data-state", "online")
    everything = ["Hei, er du der?", "Ja, jeg er her.", *written, "Sorry, mobilen døde"]
    expect(youth.locator("#messages .msg:not(.pending) .text")).to_have_text(everything)
    expect(youth.locator("#messages .msg")).to_have_count(len(everything))
    expect(pane.locator(".msg .text")).to_have_text(everything)
    assert youth.evaluate("window.sameDocument") is True
    # It asked for what came after the last message it had (seq 2) and got the gap from the
    # database after `welcome`, each message once, in order; then its own message's echo.
    hello = next(f for f in radio.sent if f["type"] == "hello")
    assert hello["last_seq"] == 2
    types = [f["type"] for f in radio.received]
    after_welcome = radio.received[types.index("welcome") :]
    messages = [(f["seq"], f["text"]) for f in after_welcome if f["type"] == "message"]
    assert messages == list(enumerate(everything, start=1))[2:], types
    screenshot(youth, "youth-after-sleep-360px.png")


def test_the_optional_questions_while_waiting(daphne_server, team, browser):
    """Asked while waiting, skippable, once; the answers end up only as counts."""
    from playwright.sync_api import expect

    from youthhub.stats.models import Count

    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(daphne_server["url"] + "/")
    expect(page.locator("#questions")).to_be_hidden()
    page.click("#start-chat")
    expect(page.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    about = page.locator("#questions")
    expect(about).to_be_visible()
    about.get_by_label("16–17").check()
    about.get_by_label("Vil ikke si").check()
    about.get_by_role("button", name="Send svarene").click()
    expect(page.locator("#questions-thanks")).to_be_visible()
    expect(about).to_be_hidden()
    cells = sorted(
        Count.objects.filter(metric__startswith="about_").values_list("metric", "key", "value")
    )
    assert cells == [("about_age", "16_17", 1), ("about_gender", "not_say", 1)]
    screenshot(page, "youth-optional-questions-answered.png")

    # Someone else skips them: the form goes and nothing is counted.
    other = browser.new_context(viewport=PHONE).new_page()
    other.goto(daphne_server["url"] + "/")
    other.click("#start-chat")
    expect(other.locator("#questions")).to_be_visible()
    other.click("#questions-skip")
    expect(other.locator("#questions")).to_be_hidden()
    assert Count.objects.filter(metric__startswith="about_").count() == 2
