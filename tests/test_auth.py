"""Staff, partner and supervisor login (issue 7, item 1): strong passwords, TOTP two-factor
(pages, APIs and sockets refuse a password-only session), enrolment, lockout after failed
attempts, session lifetime and idle timeout, and the sockets of a user who logs out or is
deactivated are closed (4401). Runs on both backends."""

import io
import re
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone, translation
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.browser import password_step
from tests.conftest import PASSWORD, connect
from youthhub.accounts import sessions, throttle
from youthhub.audit.models import AuditEvent
from youthhub.handover import services as handover_services
from youthhub.staff.services import staff_create_or_update

HOUR = 3600
NOW = 1_800_000_000.0


@pytest.fixture
def clock(monkeypatch):
    """The login clocks (session times and lock expiry), moved by the test."""

    class Clock:
        now = NOW

        def __call__(self):
            return self.now

        def advance(self, seconds):
            self.now += seconds

    c = Clock()
    monkeypatch.setattr(sessions, "clock", c)
    monkeypatch.setattr(throttle, "clock", c)
    return c


@pytest.fixture
def two_factor(settings):
    settings.YOUTHHUB_REQUIRE_2FA = True
    return settings


@pytest.fixture
def partner(db):
    handover_services.service_directory_seed()
    return handover_services.partner_create_or_update(
        username="hfu", password=PASSWORD, service_slug="hfu-tonsberg", display_name="Kari"
    ).user


@pytest.fixture
def mona(make_staff):
    return make_staff("mona", "psychologist", is_supervisor=True)


def browser() -> Client:
    """A browser that asks for English pages (staff pages follow the browser's language)."""
    return Client(headers={"accept-language": "en"})


def log_in(client: Client, username: str, password: str = PASSWORD, next_url: str = ""):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/staff/login/", data)


def device_for(user, *, confirmed=True) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=confirmed)


def code_now(device: TOTPDevice) -> str:
    device.refresh_from_db()
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def wrong_code(device: TOTPDevice) -> str:
    return f"{(int(code_now(device)) + 500_000) % 1_000_000:06d}"


def unthrottle(device: TOTPDevice) -> None:
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )


def verified_client(user, password: str = PASSWORD) -> Client:
    """A browser that gave its password and a right code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or device_for(user)
    client = browser()
    assert log_in(client, user.username, password).status_code == 302
    response = client.post("/staff/login/code/", {"code": code_now(device), "next": "/staff/"})
    assert response.status_code == 302 and response["Location"] == "/staff/", response
    return client


def cookie_of(client: Client) -> bytes:
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


# -- strong passwords ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "password, why",
    [
        ("short-1", "too short"),
        ("password1234", "too common"),
        ("129847561203", "entirely numeric"),
        ("ingrid.hansen1", "too similar"),
    ],
)
def test_weak_passwords_are_refused(password, why):
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        staff_create_or_update(username="ingrid.hansen", password=password, role="psychologist")
    assert why in " ".join(exc.value.messages)


@pytest.mark.django_db
def test_weak_partner_password_is_refused_and_the_demo_passwords_pass(partner):
    with pytest.raises(ValidationError):
        handover_services.partner_create_or_update(
            username="bup", password="bup12345", service_slug="bup-vestfold"
        )
    validate_password("ungarena-demo-2026", partner)
    validate_password(PASSWORD, partner)


# -- two-factor: pages ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_two_factor_required_a_password_is_enough(ingrid):
    client = browser()
    response = log_in(client, "ingrid")
    assert response.status_code == 302 and response["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200


@pytest.mark.django_db
def test_a_password_alone_opens_nothing_while_two_factor_is_required(
    two_factor, ingrid, mona, partner
):
    for user, page in ((ingrid, "/staff/"), (mona, "/supervisor/stats/"), (partner, "/partner/")):
        device_for(user)
        client = browser()
        response = log_in(client, user.username, next_url=page)
        assert response.status_code == 302
        assert response["Location"].startswith("/staff/login/code/?next=")
        for url in (page, "/staff/", "/supervisor/stats/now", "/partner/", "/admin/"):
            refused = client.get(url)
            assert refused.status_code == 302, url
            assert "/login/" in refused["Location"], (url, refused["Location"])
        # The login page sends a half-logged-in person on to the code.
        assert client.get("/staff/login/")["Location"].startswith("/staff/login/code/")


@pytest.mark.django_db
def test_a_right_code_logs_in_and_a_wrong_one_does_not(two_factor, ingrid):
    device = device_for(ingrid)
    client = browser()
    log_in(client, "ingrid")
    page = client.get("/staff/login/code/?next=/staff/")
    assert page.status_code == 200 and b'autocomplete="one-time-code"' in page.content
    wrong = client.post("/staff/login/code/", {"code": wrong_code(device), "next": "/staff/"})
    assert wrong.status_code == 200
    assert "That code did not work" in wrong.content.decode()
    assert client.get("/staff/").status_code == 302
    not_digits = client.post("/staff/login/code/", {"code": "12ab56"})
    assert "Enter the 6 digits" in not_digits.content.decode()
    unthrottle(device)
    right = client.post("/staff/login/code/", {"code": code_now(device), "next": "/staff/"})
    assert right.status_code == 302 and right["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id


@pytest.mark.django_db
def test_a_used_code_cannot_be_used_again(two_factor, ingrid):
    device = device_for(ingrid)
    used = code_now(device)
    first = browser()
    log_in(first, "ingrid")
    assert first.post("/staff/login/code/", {"code": used})["Location"] == "/staff/"
    second = browser()
    log_in(second, "ingrid")
    replay = second.post("/staff/login/code/", {"code": used})
    assert replay.status_code == 200 and "did not work" in replay.content.decode()


@pytest.mark.django_db
def test_wrong_codes_in_a_row_make_the_device_wait(two_factor, ingrid):
    device = device_for(ingrid)
    client = browser()
    log_in(client, "ingrid")
    client.post("/staff/login/code/", {"code": wrong_code(device)})
    client.post("/staff/login/code/", {"code": wrong_code(device)})
    waiting = client.post("/staff/login/code/", {"code": code_now(device)})
    assert waiting.status_code == 429
    assert "Wait" in waiting.content.decode()
    assert client.get("/staff/").status_code == 302


@pytest.mark.django_db
def test_first_login_enrols_an_authenticator_app(two_factor, ingrid):
    client = browser()
    response = log_in(client, "ingrid")
    assert response["Location"].startswith("/staff/login/code/")
    response = client.get(response["Location"])
    assert response.status_code == 302 and response["Location"].startswith("/staff/login/setup/")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "<script" not in html.split("<svg")[1]
    assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]
    device = TOTPDevice.objects.get(user=ingrid)
    assert not device.confirmed
    secret = re.search(r'<span class="code">([A-Z2-7 ]+)</span>', html).group(1)
    assert secret.replace(" ", "") in device.config_url
    assert "issuer=youthhub" in device.config_url
    # The same secret on a reload, until it is confirmed.
    client.get("/staff/login/setup/")
    assert TOTPDevice.objects.filter(user=ingrid).count() == 1
    wrong = client.post("/staff/login/setup/", {"code": wrong_code(device)})
    assert wrong.status_code == 200 and "did not work" in wrong.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    unthrottle(device)
    done = client.post("/staff/login/setup/", {"code": code_now(device), "next": "/staff/"})
    assert done.status_code == 302 and done["Location"] == "/staff/"
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.get("/staff/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.2fa_enrolled", actor=ingrid).exists()


@pytest.mark.django_db
def test_a_password_cannot_replace_an_enrolled_device(two_factor, ingrid):
    device_for(ingrid)
    client = browser()
    log_in(client, "ingrid")
    response = client.get("/staff/login/setup/")
    assert response.status_code == 302 and response["Location"].startswith("/staff/login/code/")
    assert TOTPDevice.objects.filter(user=ingrid).count() == 1


@pytest.mark.django_db
def test_reset_2fa_makes_the_next_login_enrol_again(two_factor, ingrid):
    client = verified_client(ingrid)
    call_command("reset_2fa", "ingrid", stdout=io.StringIO())
    assert not TOTPDevice.objects.filter(user=ingrid).exists()
    assert client.get("/staff/").status_code == 302  # the session's device is gone
    assert AuditEvent.objects.filter(action="auth.2fa_reset").exists()


@pytest.mark.django_db
def test_the_admin_logs_in_through_the_staff_login(two_factor, ingrid):
    response = browser().get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/staff/login/?next=/admin/"


# -- lockout -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_five_wrong_passwords_lock_the_username_for_15_minutes(ingrid, sara, clock):
    client = browser()
    for _ in range(5):
        wrong = log_in(client, "ingrid", "not-the-password-at-all")
        assert wrong.status_code == 200
        assert "did not match" in wrong.content.decode()
    locked = log_in(client, "ingrid")  # the right password, refused during the lock
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed attempts for this username" in text and "15 min" in text
    assert client.get("/staff/").status_code == 302
    assert log_in(browser(), "INGRID ").status_code == 429  # the same name, written otherwise
    # Someone else is not locked; the lock holds no name in the cache.
    assert log_in(browser(), "sara").status_code == 302
    clock.advance(14 * 60)
    assert "1 min" in log_in(client, "ingrid").content.decode()
    clock.advance(61)
    assert log_in(client, "ingrid").status_code == 302
    assert client.get("/staff/").status_code == 200


@pytest.mark.django_db
def test_the_lock_is_shown_in_norwegian(ingrid, clock):
    client = browser()
    for _ in range(5):
        log_in(client, "ingrid", "not-the-password-at-all")
    client.cookies["django_language"] = "nb"
    locked = log_in(client, "ingrid")
    assert locked.status_code == 429
    assert "For mange mislykkede forsøk for dette brukernavnet" in locked.content.decode()
    client.cookies["django_language"] = "en"
    assert "Too many failed attempts" in log_in(client, "ingrid").content.decode()


@pytest.mark.django_db
def test_unknown_usernames_lock_the_same_way(db, clock):
    for _ in range(5):
        log_in(browser(), "nobody-here", "whatever-password-1")
    assert log_in(browser(), "nobody-here", "whatever-password-1").status_code == 429


@pytest.mark.django_db
def test_wrong_codes_count_towards_the_lock(two_factor, ingrid, clock, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # only the username lock here
    device = device_for(ingrid)
    client = browser()
    log_in(client, "ingrid")
    for _ in range(4):
        assert client.post("/staff/login/code/", {"code": wrong_code(device)}).status_code == 200
    out = client.post("/staff/login/code/", {"code": wrong_code(device)})
    assert out.status_code == 302 and out["Location"] == "/staff/login/"
    page = client.get("/staff/login/")
    assert page.status_code == 200 and "Too many failed attempts" in page.content.decode()
    assert log_in(client, "ingrid").status_code == 429


@pytest.mark.django_db
def test_a_service_wide_limit_on_login_attempts(ingrid, sara, settings):
    settings.YOUTHHUB_LOGINS_PER_MINUTE = 3
    for _ in range(3):
        assert log_in(browser(), "sara", "not-the-password-at-all").status_code == 200
    busy = log_in(browser(), "ingrid")
    assert busy.status_code == 429
    assert "Too many login attempts right now" in busy.content.decode()


@pytest.mark.django_db
def test_codes_count_against_the_service_wide_limit_too(two_factor, ingrid, settings):
    device = device_for(ingrid)
    settings.YOUTHHUB_LOGINS_PER_MINUTE = 1
    client = browser()
    assert log_in(client, "ingrid").status_code == 302
    busy = client.post("/staff/login/code/", {"code": code_now(device)})
    assert busy.status_code == 429
    assert "Too many login attempts right now" in busy.content.decode()
    assert client.get("/staff/").status_code == 302


# -- sessions ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_expired_login_is_gone_from_the_server_not_only_from_the_browser(ingrid, clock):
    """The cookie dies with the browser (no Max-Age, no Expires), and the login's record on
    the server ends with the shift: a copy of the cookie (a restored tab, a stolen cookie)
    works while the login lives and is worth nothing after."""
    client = browser()
    cookie = log_in(client, "ingrid").cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value and not cookie["max-age"] and not cookie["expires"]
    # Even if no request ever comes again, the stored row expires within a shift
    # (`clearsessions` deletes it then).
    expire_date = Session.objects.get(session_key=cookie.value).expire_date
    assert timezone.now() < expire_date <= timezone.now() + timedelta(hours=12)
    copy = browser()
    copy.cookies[settings.SESSION_COOKIE_NAME] = cookie.value
    assert copy.get("/staff/").status_code == 200
    for _ in range(12):  # active all shift long
        clock.advance(HOUR)
        assert client.get("/staff/").status_code == 200
    clock.advance(1)
    out = copy.get("/staff/")
    assert out.status_code == 302 and out["Location"].startswith("/staff/login/")
    assert not Session.objects.filter(session_key=cookie.value).exists()
    assert client.get("/staff/").status_code == 302
    assert "Your login has expired" in copy.get("/staff/login/").content.decode()


@pytest.mark.django_db
def test_a_login_ends_after_two_idle_hours(ingrid, clock):
    client = browser()
    response = log_in(client, "ingrid")
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["max-age"] and not cookie["expires"]  # ends when the browser closes
    clock.advance(HOUR)
    assert client.get("/staff/").status_code == 200  # activity
    clock.advance(2 * HOUR - 1)
    assert client.get("/staff/").status_code == 200
    clock.advance(2 * HOUR + 1)
    out = client.get("/staff/")
    assert out.status_code == 302 and out["Location"].startswith("/staff/login/")
    page = client.get("/staff/login/")
    assert "You were logged out after 120 minutes without activity." in page.content.decode()
    assert client.get("/staff/").status_code == 302  # the session is gone


@pytest.mark.django_db
def test_background_polling_does_not_keep_a_login_alive(mona, clock):
    client = browser()
    log_in(client, "mona")
    for _ in range(9):
        clock.advance(15 * 60)
        client.get("/supervisor/stats/now")
    assert client.get("/supervisor/stats/").status_code == 302


@pytest.mark.django_db
def test_a_login_lasts_one_shift_however_active(ingrid, clock):
    client = browser()
    log_in(client, "ingrid")
    for _ in range(11):
        clock.advance(HOUR)
        assert client.get("/staff/").status_code == 200
    clock.advance(HOUR + 1)
    assert client.get("/staff/").status_code == 302
    assert "Your login has expired" in client.get("/staff/login/").content.decode()


# -- sockets -------------------------------------------------------------------------------------


async def closed_with(ws, code=4401, timeout=5):
    """Read until the server closes the socket; its close code."""
    while True:
        output = await ws.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            assert output.get("code") == code, output
            return output
        assert output["type"] == "websocket.send"


async def still_open(ws):
    """The socket answers a ping (pong, or hello_required before its hello)."""
    await ws.send_json_to({"type": "ping"})
    while True:
        output = await ws.receive_output(timeout=5)
        assert output["type"] == "websocket.send", output
        if '"pong"' in output["text"] or '"hello_required"' in output["text"]:
            return


def ws_sync(fn):
    return database_sync_to_async(fn)


async def open_socket(path: str, cookie: bytes, hello: dict | None = None):
    ws = await connect(path, cookie)
    if hello is not None:
        await ws.send_json_to(hello)
        output = await ws.receive_output(timeout=5)
        assert output["type"] == "websocket.send" and '"welcome"' in output["text"], output
    return ws


@pytest.mark.parametrize("path", ["/ws/staff/", "/ws/partner/"])
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_sockets_refuse_a_session_without_the_code(two_factor, ingrid, partner, path):
    user = ingrid if path == "/ws/staff/" else partner

    def half_logged_in():
        device_for(user)
        client = browser()
        log_in(client, user.username)
        return cookie_of(client)

    ws = await connect(path, await ws_sync(half_logged_in)())
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "unauthorized"
    await closed_with(ws)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_a_verified_session_opens_the_staff_socket(two_factor, ingrid):
    client = await ws_sync(verified_client)(ingrid)
    ws = await open_socket("/ws/staff/", cookie_of(client), {"type": "hello"})
    await still_open(ws)
    await ws.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_logout_closes_that_sessions_staff_sockets(ingrid):
    here, elsewhere = browser(), browser()
    await ws_sync(log_in)(here, "ingrid")
    await ws_sync(log_in)(elsewhere, "ingrid")
    ws = await open_socket("/ws/staff/", cookie_of(here), {"type": "hello"})
    before_hello = await open_socket("/ws/staff/", cookie_of(here))
    other = await open_socket("/ws/staff/", cookie_of(elsewhere), {"type": "hello"})
    response = await ws_sync(here.post)("/staff/logout/")
    assert response.status_code == 302
    await closed_with(ws)
    await closed_with(before_hello)
    await still_open(other)  # another browser's login is not this logout's business
    # The logged-out cookie no longer opens a socket.
    again = await connect("/ws/staff/", cookie_of(here))
    assert (await again.receive_json_from(timeout=5))["code"] == "unauthorized"
    await closed_with(again)
    await other.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_deactivating_a_user_closes_their_staff_and_partner_sockets(ingrid, partner):
    staff_client, partner_client = browser(), browser()
    await ws_sync(log_in)(staff_client, "ingrid")
    await ws_sync(log_in)(partner_client, "hfu")
    staff_ws = await open_socket("/ws/staff/", cookie_of(staff_client), {"type": "hello"})
    partner_ws = await open_socket("/ws/partner/", cookie_of(partner_client))

    def deactivate(user):
        user.is_active = False
        user.save()

    await ws_sync(deactivate)(ingrid)
    await closed_with(staff_ws)
    await still_open(partner_ws)
    await ws_sync(deactivate)(partner)
    await closed_with(partner_ws)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_a_password_change_closes_the_sockets(two_factor, ingrid):
    client = await ws_sync(verified_client)(ingrid)
    ws = await open_socket("/ws/staff/", cookie_of(client), {"type": "hello"})

    def new_password():
        ingrid.set_password("a-brand-new-passphrase-7")
        ingrid.save()

    await ws_sync(new_password)()
    await closed_with(ws)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_a_two_factor_reset_closes_the_sockets(two_factor, ingrid):
    client = await ws_sync(verified_client)(ingrid)
    ws = await open_socket("/ws/staff/", cookie_of(client), {"type": "hello"})
    await ws_sync(call_command)("reset_2fa", "ingrid", stdout=io.StringIO())
    await closed_with(ws)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_an_idle_login_closes_its_socket_and_activity_on_it_counts(ingrid, clock):
    client = browser()
    await ws_sync(log_in)(client, "ingrid")
    ws = await open_socket("/ws/staff/", cookie_of(client), {"type": "hello"})
    # A person's frame on the socket is activity: the page keeps its login after 2 hours.
    clock.advance(HOUR + 30 * 60)
    await ws.send_json_to({"type": "status", "status": "available"})
    assert (await ws.receive_json_from(timeout=5))["type"] in ("status", "queue.update")
    clock.advance(HOUR)
    assert (await ws_sync(client.get)("/staff/")).status_code == 200
    # Pings alone do not: two quiet hours later the socket closes at its next check.
    clock.advance(2 * HOUR + 1)
    await ws.send_json_to({"type": "ping"})
    await closed_with(ws)
    refused = await connect("/ws/staff/", cookie_of(client))
    assert (await refused.receive_json_from(timeout=5))["code"] == "unauthorized"
    await closed_with(refused)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_an_expired_login_cannot_open_a_socket(ingrid, clock):
    client = browser()
    await ws_sync(log_in)(client, "ingrid")
    clock.advance(2 * HOUR + 1)
    ws = await connect("/ws/staff/", cookie_of(client))
    assert (await ws.receive_json_from(timeout=5))["code"] == "unauthorized"
    await closed_with(ws)


def test_session_tags_name_no_session():
    tag = sessions.tag("abcdef1234567890")
    assert tag and "abcdef" not in tag and tag == sessions.tag("abcdef1234567890")
    assert sessions.tag("") == ""


# -- in Chromium, against a server with two-factor on ------------------------------------------


@pytest.mark.services
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_enrol_then_log_out_in_another_tab(two_factor_server, ingrid, browser):
    from playwright.sync_api import expect

    url = two_factor_server
    context = browser.new_context(locale="en-GB")
    dashboard = context.new_page()
    password_step(dashboard, url, "ingrid")
    expect(dashboard).to_have_url(re.compile(r"/staff/login/setup/"))
    expect(dashboard.locator(".qr.totp svg")).to_be_visible()
    try:  # inside Playwright's loop: close the connection the queries open
        device = TOTPDevice.objects.get(user=ingrid)
        dashboard.fill("#id_code", code_now(device))
        dashboard.click("button[type=submit]")
        expect(dashboard.locator("#status")).to_have_text("Online")
        assert TOTPDevice.objects.get(pk=device.pk).confirmed
    finally:
        connection.close()

    # A second tab of the same browser logs out: the dashboard's socket closes (4401) and the
    # page goes to the login page.
    other = context.new_page()
    other.goto(url + "/staff/")
    expect(other.locator("#status")).to_have_text("Online")
    other.click("form[action='/staff/logout/'] button")
    expect(dashboard).to_have_url(re.compile(r"/staff/login/"))
    expect(dashboard.locator("#id_username")).to_be_visible()
    context.close()
