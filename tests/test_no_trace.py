"""No trace of youth: after a full visit in Chromium (a chat with staff, feedback, the crisis
button, a drop-in ticket taken at the kiosk and followed on a phone), no line the server
logged, no column of any table and no value in Redis holds an IP address or the youth's user
agent. Plus the Django loggers that see requests (django.request, django.security), checked
on their own, and the scanner itself, checked against planted values."""

import io
import ipaddress
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.utils.log import AdminEmailHandler

from tests.browser import staff_login

UA = "YouthhubTestAgent/1.0"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}

# Deliberately not youthhub.privacy.ADDRESS_RE: a second, independent way to spot addresses.
_V4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d])")
_V6 = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?![0-9A-Za-z])")
# Columns named like this have no business existing here at all.
_NAMES = re.compile(r"(^|_)(ip|ips|ip_address|remote_addr|user_agent|useragent|ua|addr)($|_)")


def addresses(text: str) -> list[str]:
    """Every IPv4 or IPv6 address in `text` (times like 12:30:15 are not addresses)."""
    found = []
    for match in _V4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group(0))
            found.append(match.group(0))
        except ValueError:
            pass
    for match in _V6.finditer(text):
        candidate = match.group(0).strip(".")
        if not re.search(r"[0-9A-Fa-f]", candidate):
            continue  # "::" alone: punctuation, not someone's address
        try:
            ipaddress.IPv6Address(candidate)
            found.append(candidate)
        except ValueError:
            pass
    return found


def traces(text: str) -> list[str]:
    """Addresses and the youth's user agent in `text`."""
    return addresses(text) + ([UA] if UA.lower() in text.lower() else [])


def blob_traces(blob: bytes) -> list[str]:
    """Traces in a binary value: text stored as bytes is read as text; opaque bytes
    (ciphertext, pickles) only through their longer printable runs, so random bytes cannot
    pass for an address."""
    blob = bytes(blob)
    if UA.encode().lower() in blob.lower():
        return [UA]
    try:
        return traces(blob.decode("utf-8"))
    except UnicodeDecodeError:
        runs = "\n".join(run.decode("ascii") for run in re.findall(rb"[\x20-\x7e]{7,}", blob))
        # Short IPv6 forms ("a::1") turn up in random bytes now and then; in opaque bytes only
        # a longer one counts.
        return [t for t in traces(runs) if ":" not in t or len(re.sub("[^0-9A-Fa-f]", "", t)) >= 4]


def value_traces(value) -> list[str]:
    if value is None or isinstance(value, bool | int | float):
        return []
    if isinstance(value, bytes | memoryview | bytearray):
        return blob_traces(value)
    if isinstance(value, dict | list):
        return traces(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, str):
        return traces(value)
    return []  # dates, times, UUIDs, decimals: no room for an address or an agent


def scan_database() -> list[tuple]:
    """(table, column, trace) for every trace in every column of every table."""
    found = []
    session_table = Session._meta.db_table
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        assert len(tables) > 20, tables
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type IN ('inet', 'cidr', "
                "'macaddr', 'macaddr8')"
            )
            found += [(t, c, "an address-typed column") for t, c in cursor.fetchall()]
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [d[0] for d in cursor.description]
            found += [(table, c, "a column named for it") for c in columns if _NAMES.search(c)]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if table == session_table and column == "session_data":
                        value = SessionStore().decode(value)  # signed and compressed
                    found += [(table, column, t) for t in value_traces(value)]
    return found


def scan_database_in_a_thread() -> list[tuple]:
    """Outside Playwright's event loop: a plain thread with its own connection, closed after."""

    def run():
        try:
            return scan_database()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def scan_redis() -> tuple[int, list[tuple]]:
    """(keys looked at, (key, trace) for every trace in a key or its value)."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    found, keys = [], 0
    try:
        for key in client.scan_iter(count=500):
            keys += 1
            kind = client.type(key).decode()
            if kind == "string":
                values = [client.get(key)]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = client.zrange(key, 0, -1)
            elif kind == "hash":
                values = [b for pair in client.hgetall(key).items() for b in pair]
            else:
                values = []
            for value in [key, *values]:
                found += [(key, t) for t in blob_traces(value or b"")]
    finally:
        client.close()
    return keys, found


# -- the scanner, against planted values ------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("peer 127.0.0.1:51234 open", ["127.0.0.1"]),
        ("client ['203.0.113.9', 4444]", ["203.0.113.9"]),
        ("from [::1]:8000", ["::1"]),
        ("v6 2001:db8::17 said hi", ["2001:db8::17"]),
        ("mapped ::ffff:10.1.2.3", ["10.1.2.3", "::ffff:10.1.2.3"]),
        ("Mozilla/5.0 youthhubtestagent/1.0", [UA]),
        ("at 12:30:15 seq 10.5 v1.2.3 id 3f2a-11 2026-03-30 14:00:00+00:00", []),
    ],
)
def test_the_scanner_finds_addresses_and_the_agent_and_nothing_else(text, expected):
    assert sorted(traces(text)) == sorted(expected)


def test_the_scanner_reads_text_in_bytes_and_ignores_random_bytes():
    import os

    assert blob_traces(b"ip=192.0.2.1") == ["192.0.2.1"]
    assert blob_traces(b"\x80\x04pickled 198.51.100.7\x94.") == ["198.51.100.7"]
    assert blob_traces(b"\x00\xff" + UA.encode()) == [UA]
    assert blob_traces(b"\x80 peer 2001:db8::5 \x81") == ["2001:db8::5"]
    assert all(blob_traces(os.urandom(4096)) == [] for _ in range(50))


@pytest.mark.django_db
def test_the_database_scan_finds_a_planted_address_and_agent(make_youth):
    from youthhub.handover.models import Service

    youth, _ = make_youth()
    youth.alias = "Blå 10.20.30.40"
    youth.save()
    Service.objects.create(name="x", slug="x", kind="other", access="phone", offers=UA)
    found = {(table, trace) for table, _column, trace in scan_database()}
    assert ("chat_youth", "10.20.30.40") in found
    assert ("handover_service", UA) in found


# -- Django's own request loggers -------------------------------------------------------------


def _console_handler() -> logging.Handler:
    """The handler settings.LOGGING gives Django's loggers (pytest adds its own capturing)."""
    handlers = [
        h
        for h in logging.getLogger("django").handlers
        if not type(h).__module__.startswith("_pytest")
    ]
    assert len(handlers) == 1, handlers  # ours alone: no Django default, no mail_admins
    return handlers[0]


def test_no_logger_mails_requests_and_django_logs_through_the_redacting_handler():
    for name in ["", *logging.root.manager.loggerDict]:
        logger = logging.getLogger(name)
        assert not any(isinstance(h, AdminEmailHandler) for h in logger.handlers), name
    handler = _console_handler()
    assert any(type(f).__name__ == "RedactAddresses" for f in handler.filters)
    assert not logging.getLogger("django").propagate


@pytest.mark.django_db
def test_django_request_and_security_logs_name_no_address_and_no_agent():
    """404s (django.request), a CSRF failure (django.security.csrf) and a bad Host header
    (django.security.DisallowedHost, which quotes the header) from a client with an address,
    forwarded-for headers and a user agent."""
    handler = _console_handler()
    stream = io.StringIO()
    old = handler.setStream(stream)
    headers = {
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_USER_AGENT": UA,
        "HTTP_X_FORWARDED_FOR": "198.51.100.23, 2001:db8::5",
        "HTTP_X_REAL_IP": "198.51.100.23",
    }
    try:
        client = Client(enforce_csrf_checks=True, **headers)
        assert client.get("/no-such-page/").status_code == 404
        assert client.get("/api/youth/nope").status_code == 404
        assert client.post("/i18n/setlang/", {"language": "en"}).status_code == 403
        assert client.get("/", HTTP_HOST="203.0.113.7").status_code == 400
        assert client.get("/", HTTP_HOST="[2001:db8::7]").status_code == 400
    finally:
        handler.setStream(old)
    output = stream.getvalue()
    assert "Not Found: /no-such-page/" in output
    assert "Forbidden (CSRF" in output
    assert "Invalid HTTP_HOST header" in output and "[address]" in output
    assert traces(output) == [], output


# -- the full visit in Chromium ---------------------------------------------------------------


@pytest.mark.services
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_full_visit_leaves_no_address_and_no_user_agent_anywhere(daphne_server, team, browser):
    from playwright.sync_api import expect

    from chat.models import Conversation, Feedback, Message, Youth

    url = daphne_server["url"]
    complaints = []  # the security headers must not break or bother any page

    def page_of(context):
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                complaints.append(m.text)
                if "Content Security Policy" in m.text or "Permissions-Policy" in m.text
                else None
            ),
        )
        page.on("pageerror", lambda e: complaints.append(f"{e}"))
        return page

    def youth_page(viewport=PHONE):
        return page_of(browser.new_context(viewport=viewport, user_agent=UA))

    ingrid = page_of(browser.new_context(viewport=DESKTOP))
    staff_login(ingrid, url, "ingrid")
    ingrid.fill("#my-room", "Rom 4")

    # A chat: both ways, ended by staff with a request for feedback, which the youth gives.
    youth = youth_page()
    youth.goto(url + "/")
    assert youth.evaluate("navigator.userAgent") == UA
    youth.click("#start-chat")
    expect(youth.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    ingrid.locator(".accept").first.click()
    expect(youth.locator("#chat-state")).to_contain_text("Ingrid er her")
    youth.fill("#text", "hei, jeg lurer på noe")
    youth.press("#text", "Enter")
    pane = ingrid.locator(".pane:not([hidden])")
    expect(pane.locator(".msg.theirs .text")).to_have_text(["hei, jeg lurer på noe"])
    pane.locator(".composer textarea").fill("Så fint at du skriver. Hva lurer du på?")
    pane.locator(".composer textarea").press("Enter")
    expect(youth.locator(".msg.theirs .text")).to_have_text(
        ["Så fint at du skriver. Hva lurer du på?"]
    )
    pane.locator(".end").click()
    pane.locator(".ask-feedback").check()
    pane.locator(".end-panel button[type=submit]").click()
    feedback = youth.locator("#feedback")
    expect(feedback).to_be_visible()
    for statement in ("understood", "talked_about", "form", "useful"):
        feedback.locator(f"input[name={statement}][value='4']").check()
    youth.fill("#feedback-text", "Det hjalp å skrive")
    feedback.locator("button[type=submit]").click()
    expect(youth.locator("#feedback-thanks")).to_be_visible()

    # The crisis button.
    worried = youth_page()
    worried.goto(url + "/")
    worried.click("#start-chat")
    expect(worried.locator("#chat-state")).to_contain_text("nummer 1 i køen")
    worried.get_by_role("button", name="Jeg er ikke trygg nå").click()
    expect(worried.locator("#crisis-sent")).to_be_visible()
    expect(ingrid.locator("#crisis-banner")).to_contain_text("not safe")

    # A drop-in ticket from the kiosk, followed on a phone, called and met.
    kiosk = youth_page({"width": 1024, "height": 768})
    kiosk.goto(url + "/dropin/tonsberg/kiosk/")
    kiosk.get_by_role("button", name="Første ledige").click()
    expect(kiosk.locator("#kiosk-ticket")).to_have_text("B-1")
    follow_url = kiosk.locator("#kiosk-qr").get_attribute("data-follow-url")
    phone = youth_page()
    phone.goto(follow_url)
    expect(phone.locator("#ticket")).to_have_text("Lappen din: B-1")
    ingrid.get_by_role("button", name="Call B-1").click()
    expect(phone.locator("#chat-state")).to_contain_text("Din tur! Gå til Rom 4")
    ingrid.locator(".pane:not([hidden])").get_by_role("button", name="Arrived").click()
    expect(phone.locator("#chat-state")).to_contain_text("Ingrid er her")
    for page in (youth, worried, kiosk, phone):
        page.reload()  # once more through every youth page's load and reconnect
    expect(phone.locator("#chat-state")).to_contain_text("Ingrid er her")

    assert complaints == []

    # Every line the server logged (this test's and those of earlier tests in the session).
    lines = daphne_server["log"].read_text().splitlines()
    assert any('"GET /dropin/tonsberg/kiosk/"' in line for line in lines)
    assert any("WSCONNECT /ws/youth/" in line for line in lines)
    assert [(line, traces(line)) for line in lines if traces(line)] == []

    # Every column of every table, and every value in Redis.
    def stored() -> tuple:
        try:
            return (
                Youth.objects.count(),
                Conversation.objects.filter(crisis=True).count(),
                Conversation.objects.filter(channel="dropin").count(),
                Message.objects.count(),
                Feedback.objects.exclude(text=None).count(),
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        # The visit was really stored: three youth (the phone took the kiosk's ticket over).
        assert pool.submit(stored).result() == (3, 1, 1, 2, 1)
    assert scan_database_in_a_thread() == []
    keys, found = scan_redis()
    assert keys > 0 and found == []  # rate-limit counters at least, in the cache
