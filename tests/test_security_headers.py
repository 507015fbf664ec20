"""In transit and in the browser: security headers on every page, a Content-Security-Policy
without inline script or style that every page lives with (checked in Chromium too),
`manage.py check --deploy` clean with production settings, and channel-layer payloads
encrypted in Redis."""

import asyncio
import json
import os
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.browser import staff_login
from tests.conftest import PASSWORD
from youthhub.crypto import generate_master_key_entry
from youthhub.security import PERMISSIONS_POLICY, content_security_policy

BASE_DIR = Path(__file__).resolve().parent.parent
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
    "connect-src 'self' wss://testserver ws://testserver"
)


@pytest.fixture
def people(arena, make_staff, django_user_model):
    """A staff member, a supervisor, a partner and an admin, each with a logged-in client."""
    from youthhub.handover import services as handover

    handover.service_directory_seed()
    handover.partner_create_or_update(
        username="kari", password=PASSWORD, service_slug="hfu-tonsberg", display_name="Kari"
    )
    clients = {"anonymous": Client()}
    users = {
        "staff": make_staff("ingrid", "psychologist"),
        "supervisor": make_staff("mona", "psychologist", is_supervisor=True),
        "partner": django_user_model.objects.get(username="kari"),
        "admin": django_user_model.objects.create_superuser("root", password=PASSWORD),
    }
    for role, user in users.items():
        clients[role] = Client()
        clients[role].force_login(user)
    return clients


# Every kind of page and answer, with who asks for it and the status it gets.
PAGES = [
    ("anonymous", "/", 200),
    ("anonymous", "/dropin/tonsberg/", 200),
    ("anonymous", "/dropin/tonsberg/kiosk/", 200),
    ("anonymous", "/sw.js", 200),
    ("anonymous", "/manifest.webmanifest", 200),
    ("anonymous", "/staff/login/", 200),
    ("anonymous", "/admin/login/", 302),  # the admin logs in at the staff login (2FA)
    ("anonymous", "/api/queue/overview", 200),
    ("anonymous", "/api/queue/dropin/tonsberg/qr.svg", 200),
    ("anonymous", "/no-such-page/", 404),
    ("staff", "/staff/", 200),
    ("staff", "/supervisor/stats/", 403),
    ("supervisor", "/supervisor/stats/", 200),
    ("supervisor", "/supervisor/stats/chart/by_day.svg", 200),
    ("partner", "/partner/", 200),
    ("admin", "/admin/", 200),
    ("admin", "/admin/handover/service/", 200),
]


@pytest.mark.django_db
@pytest.mark.parametrize("role, path, status", PAGES)
def test_every_answer_carries_the_security_headers(people, role, path, status):
    response = people[role].get(path)
    assert response.status_code == status, path
    assert response["Content-Security-Policy"] == EXPECTED_CSP
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["Permissions-Policy"] == PERMISSIONS_POLICY
    for feature in ("camera", "microphone", "geolocation"):
        assert f"{feature}=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response  # plain http: HSTS would be ignored


class _InlineFinder(HTMLParser):
    """Collects what the policy would block: inline scripts, inline styles, event handlers."""

    def __init__(self):
        super().__init__()
        self.blocked: list[str] = []
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in attrs:
            if name == "style" or name.startswith("on"):
                self.blocked.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.blocked.append("<style>")
        if tag == "script":
            self._script = attrs
        for name in ("href", "src", "action", "formaction"):
            if (attrs.get(name) or "").strip().lower().startswith("javascript:"):
                self.blocked.append(f"<{tag} {name}=javascript:>")

    def handle_data(self, data):
        script, self._script = self._script, None
        if script is None or script.get("src") or not data.strip():
            return
        if script.get("type") not in ("application/json", "application/ld+json"):
            self.blocked.append(f"<script> {data.strip()[:60]}")


HTML_PAGES = [
    (role, path)
    for role, path, status in PAGES
    if status != 302 and not path.endswith((".js", ".svg", ".webmanifest", "/overview"))
]


@pytest.mark.django_db
@pytest.mark.parametrize("role, path", HTML_PAGES)
def test_no_page_needs_inline_script_or_style(people, role, path):
    response = people[role].get(path)
    assert response["Content-Type"].startswith("text/html"), path
    finder = _InlineFinder()
    finder.feed(response.content.decode())
    assert finder.blocked == [], path


def test_the_policy_names_only_this_hosts_websockets():
    assert content_security_policy("chat.example.org", secure=True).endswith(
        "connect-src 'self' wss://chat.example.org"
    )
    assert "ws://chat.example.org" in content_security_policy("chat.example.org", secure=False)
    # A host that is not allowed gets no WebSocket origin at all (and the 400 it earns).
    assert content_security_policy(None, secure=False).endswith("connect-src 'self'")


@pytest.mark.django_db
def test_a_host_that_is_not_allowed_still_gets_the_headers():
    response = Client().get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Security-Policy"].endswith("connect-src 'self'")


@pytest.mark.django_db
@override_settings(
    HTTPS=True,
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_over_https_browsers_are_told_to_stay_on_https():
    response = Client().get("/", HTTP_X_FORWARDED_PROTO="https", SERVER_PORT="443")
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    csp = response["Content-Security-Policy"]
    assert "connect-src 'self' wss://testserver;" in csp and "ws://" not in csp
    assert csp.endswith("upgrade-insecure-requests")


# -- production settings, in a fresh process ----------------------------------------------------


def production_env(**extra) -> dict:
    """The environment of a production host (deploy/README.md), with the test database when
    there is one (the checks connect to it with --database) and a Redis URL."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        database_url = (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        )
    else:
        database_url = "postgres://youthhub@127.0.0.1:5432/youthhub"  # parsed, not connected
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "youthhub.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "YOUTHHUB_DATA_KEYS": generate_master_key_entry("k1"),
        "ALLOWED_HOSTS": "chat.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://chat.example.org",
        "YOUTHHUB_HTTPS": "true",
        "YOUTHHUB_DATA_DIR": str(Path(os.environ["YOUTHHUB_DATA_DIR"]) / "production"),
    }
    env.update(extra)
    return {key: value for key, value in env.items() if value is not None}


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    args = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        args += ["--database", "default"]
    return run(args, env)


@pytest.mark.django_db
def test_check_deploy_is_clean_with_production_settings():
    result = check_deploy(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (1 silenced)." in result.stdout, result.stdout


@pytest.mark.django_db
def test_check_deploy_complains_without_https_or_without_layer_encryption():
    result = check_deploy(production_env(YOUTHHUB_HTTPS="false"))
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr, result.stderr
    result = check_deploy(production_env(YOUTHHUB_LAYER_ENCRYPTION="false"))
    assert result.returncode != 0 and "youthhub.W002" in result.stderr, result.stderr


PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "layer": s.CHANNEL_LAYERS["default"],
    "debug": s.DEBUG,
    "hsts": [s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD],
    "redirect": s.SECURE_SSL_REDIRECT,
    "cookies": [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.LANGUAGE_COOKIE_SECURE],
}))
"""


def production_settings(**extra) -> dict:
    result = run(["-c", PRINT_SETTINGS], production_env(**extra))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_settings_encrypt_the_channel_layer_and_insist_on_https():
    env = production_env()
    values = production_settings(SECRET_KEY=env["SECRET_KEY"])
    layer = values["layer"]
    assert layer["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert layer["CONFIG"]["symmetric_encryption_keys"] == [env["SECRET_KEY"]]
    assert values["debug"] is False
    assert values["hsts"] == [31536000, True, False]
    assert values["redirect"] is True and values["cookies"] == [True, True, True]
    # A dedicated key list rotates without touching SECRET_KEY: the first encrypts.
    values = production_settings(YOUTHHUB_LAYER_KEYS="new-layer-key, old-layer-key")
    assert values["layer"]["CONFIG"]["symmetric_encryption_keys"] == [
        "new-layer-key",
        "old-layer-key",
    ]
    core = production_settings(YOUTHHUB_CHANNEL_LAYER="core")["layer"]
    assert core["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert core["CONFIG"]["symmetric_encryption_keys"]


# -- the payloads in Redis ------------------------------------------------------------------------

SECRET_TEXT = "mamma drikker, ikke si det til noen"


@pytest.mark.services
def test_pubsub_payloads_are_encrypted_on_the_wire_and_arrive_readable():
    """What the configured layer (RedisPubSubChannelLayer) publishes in Redis is a Fernet
    token, never the message; a member of the group still gets the message."""
    import redis.asyncio as aioredis
    from channels_redis.pubsub import RedisPubSubChannelLayer

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    assert config["symmetric_encryption_keys"]

    async def scenario():
        layer = RedisPubSubChannelLayer(**config)
        spy = aioredis.Redis.from_url(settings.REDIS_URL)
        pubsub = spy.pubsub()
        await pubsub.psubscribe(f"{config['prefix']}*")
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        try:
            member = await layer.new_channel()
            await layer.group_add("conv.test-encryption", member)
            await layer.group_send(
                "conv.test-encryption", {"type": "chat.message", "text": SECRET_TEXT}
            )
            received = await asyncio.wait_for(layer.receive(member), 5)
            seen = []
            while (message := await pubsub.get_message(timeout=1)) is not None:
                if message["type"] == "pmessage":
                    seen.append(message["data"])
            await layer.group_discard("conv.test-encryption", member)
            return received, seen
        finally:
            await pubsub.aclose()
            await spy.aclose()
            await layer.flush()

    received, seen = asyncio.run(scenario())
    assert received["text"] == SECRET_TEXT
    assert seen, "the spy saw the published payload"
    for payload in seen:
        assert SECRET_TEXT.encode() not in payload and b"chat.message" not in payload
        assert payload.startswith(b"gAAAAA")  # a Fernet token


@pytest.mark.services
def test_the_core_layer_stores_payloads_encrypted_too():
    import redis
    from channels_redis.core import RedisChannelLayer

    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"], prefix="yhcoretest")

    async def send():
        layer = RedisChannelLayer(**config)
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "chat.message", "text": SECRET_TEXT})
        await layer.close_pools()

    asyncio.run(send())
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        stored = []
        for key in client.scan_iter(match="yhcoretest*"):
            kind = client.type(key)
            if kind == b"zset":
                stored += client.zrange(key, 0, -1)
            elif kind == b"list":
                stored += client.lrange(key, 0, -1)
            elif kind == b"string":
                stored.append(client.get(key))
            client.delete(key)
    finally:
        client.close()
    assert stored
    assert not any(SECRET_TEXT.encode() in value or b"chat.message" in value for value in stored)


# -- every page in Chromium, under the policy -----------------------------------------------------


@pytest.fixture
def roles(team, make_staff):
    """Ingrid (staff), Mona (supervisor), Kari (partner): ORM work before Chromium starts."""
    from youthhub.handover import services as handover

    make_staff("mona", "psychologist", is_supervisor=True)
    handover.service_directory_seed()
    handover.partner_create_or_update(
        username="kari", password=PASSWORD, service_slug="hfu-tonsberg", display_name="Kari"
    )


@pytest.mark.services
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_page_works_under_the_policy_in_chromium(daphne_server, roles, browser):
    """Youth, drop-in and kiosk pages, the dashboard, statistics (charts as images), the
    partner inbox and the admin: no policy violation, no script error, nothing blocked."""
    from playwright.sync_api import expect

    url = daphne_server["url"]
    violations = []

    def watched(context):
        # Runs before the page's own scripts and is not subject to the page's policy.
        context.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                violations.append(f"{page.url}: {m.text}")
                if "Content Security Policy" in m.text
                or "CSP violation" in m.text
                or "Permissions-Policy" in m.text
                else None
            ),
        )
        page.on("pageerror", lambda e: violations.append(f"{page.url}: {e}"))
        return page

    youth = watched(browser.new_context(viewport={"width": 360, "height": 740}))
    youth.goto(url + "/dropin/tonsberg/")
    youth.wait_for_load_state("networkidle")
    youth.goto(url + "/")
    youth.click("#start-chat")  # a session (fetch), then the WebSocket
    expect(youth.locator("#chat-state")).to_contain_text("i køen")
    expect(youth.locator("#status")).to_have_attribute("data-state", "online")

    kiosk = watched(browser.new_context(viewport={"width": 1024, "height": 768}))
    kiosk.goto(url + "/dropin/tonsberg/kiosk/")
    kiosk.get_by_role("button", name="Første ledige").click()
    expect(kiosk.locator("#kiosk-qr svg")).to_be_visible()  # server-made SVG, no style
    qr = kiosk.locator("img.qr")
    expect(qr).to_have_js_property("complete", True)
    assert qr.evaluate("img => img.naturalWidth") > 0

    ingrid = watched(browser.new_context())
    staff_login(ingrid, url, "ingrid")

    mona = watched(browser.new_context(viewport={"width": 1280, "height": 900}))
    staff_login(mona, url, "mona")
    mona.goto(url + "/supervisor/stats/")
    expect(mona.locator("#now-staff")).not_to_have_text("…")  # the live panel's fetch
    charts = mona.locator("img.chart")
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        expect(chart).to_have_js_property("complete", True)
        assert chart.evaluate("img => img.naturalWidth") > 0

    kari = watched(browser.new_context())
    kari.goto(url + "/staff/login/")
    kari.fill("#id_username", "kari")
    kari.fill("#id_password", PASSWORD)
    kari.click("button[type=submit]")
    expect(kari).to_have_url(url + "/partner/")

    admin = watched(browser.new_context())
    admin.goto(url + "/admin/login/")
    expect(admin.locator("#id_username")).to_be_visible()

    for page in (youth, kiosk, ingrid, mona, kari, admin):
        page.wait_for_timeout(200)  # late reports
    assert violations == []
