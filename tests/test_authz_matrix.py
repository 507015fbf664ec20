"""The authorisation matrix: who may do what, over every URL and every WebSocket frame type.

Two tables, both read as "row → {role: expected}":

- HTTP: every URL the resolver knows (enumerated from `get_resolver()`; a URL missing from
  the table fails `test_every_url_is_classified`, so a new URL must be classified here) ×
  every role. Expected is a status code, or LOGIN / ADMIN_LOGIN for "sent to the login page".
  Roles: anonymous, youth (an anonymous identity: its token in `Authorization: Bearer`),
  staff, partner, supervisor, admin (is_staff + superuser, no staff profile), and for pages
  about one partner's handover also other_partner (a partner of another service: the page
  does not exist for them). Cookie-authenticated POSTs also need the CSRF token, and while
  two-factor login is required a password-only session is nobody.
- WebSocket: which role can open which socket (`unauthorized` closes with 4401), and every
  frame type of YOUTH_FRAMES / STAFF_FRAMES / PARTNER_FRAMES sent by someone who is *not*
  part of the conversation it is about: a second youth, a colleague who is not assigned, a
  supervisor, a partner without a valid warm handover. Each gets an error (or acts only on
  their own things), nothing of the other conversation changes, and nothing of it reaches them.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import time, timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from chat import protocol
from chat import services as chat_services
from chat.actors import Actor
from chat.models import Conversation, Feedback, Message, Note, Transfer
from dropin import services as queue
from dropin.services import pool_ensure, site_ensure
from tests.conftest import PASSWORD, connect, db_snapshot, put_on_duty, session_cookie
from youthhub.audit.models import AuditEvent
from youthhub.handover import selectors as handover_selectors
from youthhub.handover import services as handover_services
from youthhub.handover.models import Consent, Consultation, Handover, PartnerProfile, Service
from youthhub.staff.models import CannedReply, StaffProfile
from youthhub.staff.services import staff_create_or_update

ROLES = ("anonymous", "youth", "staff", "partner", "supervisor", "admin")
LOGIN = "login page"  # 302 to settings.LOGIN_URL?next=…
ADMIN_LOGIN = "admin login page"  # 302 to /admin/login/?next=…

SUMMARY = {
    "concern": "Hemmelig bekymring om søvn",
    "own_words": "Jeg vil klare skolen",
    "assessment": "Trenger vurdering",
    "interim_plan": "Chat til første møte",
    "who_does_what": "Ingrid følger opp",
}
SECRET_TEXT = "Hemmelig melding fra A"  # A's message: must never reach anyone else
SECRET_NOTE = "Hemmelig notat om A"
SECRET_QUESTION = "Hemmelig konsultasjon fra Ingrid"


# -- the world: every role, and something of each kind to act on --------------------------------


def _text_version(youth, handover_id) -> str:
    return handover_selectors.handover_for_youth(youth, handover_id)["ask"]["text_version"]


def _chat(staff, *, site=None):
    """A new youth whom `staff` has taken: (youth, token, conversation)."""
    youth, token = chat_services.youth_session_create()
    if site is None:
        conversation = queue.queue_request(youth=youth, target={"staff": staff.id})
    else:
        conversation = queue.queue_request(youth=youth, site_slug=site.slug)
    conversation = queue.queue_accept(user=staff, conversation_id=conversation.id, room="Rom 1")
    return youth, token, conversation


def _handover(staff, conversation, service, reach, *, consent=True):
    handover = handover_services.handover_draft(
        user=staff,
        conversation_id=conversation.id,
        service=service,
        reach=reach,
        summary=SUMMARY,
    )
    handover = handover_services.handover_propose(user=staff, handover_id=handover.id)
    code = None
    if consent:
        result = handover_services.consent_answer(
            youth=conversation.youth,
            handover_id=handover.id,
            service=service,
            answer="agree",
            text_version=_text_version(conversation.youth, handover.id),
            age_band="16_plus",
        )
        code = result.code
    return Handover.objects.get(id=handover.id), code


@contextmanager
def quiet_events():
    """While the world is made nobody listens yet: skip building and publishing its frames."""
    with (
        mock.patch("chat.events.publish_on_commit"),
        mock.patch("chat.events.publish_many_on_commit"),
    ):
        yield


def build_world(*, slim: bool = False) -> SimpleNamespace:
    """Everything both tables act on, made with the real services (docs in the module head).
    `slim`: only the people, youth A's chat and its warm handover to BUP."""
    with quiet_events():
        return _build_world(slim=slim)


def _build_world(*, slim: bool) -> SimpleNamespace:
    w = SimpleNamespace()
    pool = pool_ensure(slug="vestfold", name="Vestfold chat")
    hours = {day: (time(0), time(23, 59)) for day in range(7)}
    w.site = site_ensure(
        slug="tonsberg", name="Ung Arena Tønsberg", weekly_hours=hours, pool=pool, ticket_prefix="B"
    )
    w.pool = pool
    make = staff_create_or_update
    w.ingrid = put_on_duty(
        make(username="ingrid", password=PASSWORD, role="psychologist").user, w.site
    )
    w.sara = put_on_duty(make(username="sara", password=PASSWORD, role="health_nurse").user, w.site)
    w.tor = put_on_duty(make(username="tor", password=PASSWORD, role="social_worker").user, w.site)
    w.siri = put_on_duty(
        make(username="siri", password=PASSWORD, role="psychologist", is_supervisor=True).user,
        w.site,
    )
    StaffProfile.objects.filter(user__in=(w.ingrid, w.sara)).update(capacity=50)
    w.root = get_user_model().objects.create_superuser("root", "root@example.invalid", PASSWORD)
    handover_services.service_directory_seed()
    w.bup_service = Service.objects.get(slug="bup-vestfold")
    w.hfu_service = Service.objects.get(slug="hfu-tonsberg")
    w.bup = handover_services.partner_create_or_update(
        username="bup", password=PASSWORD, service_slug="bup-vestfold", display_name="Kari, BUP"
    ).user
    w.hfu = handover_services.partner_create_or_update(
        username="hfu",
        password=PASSWORD,
        service_slug="hfu-tonsberg",
        display_name="Helsestasjonen",
    ).user
    w.users = {
        "anonymous": None,
        "youth": None,
        "staff": w.ingrid,
        "partner": w.bup,
        "other_partner": w.hfu,
        "supervisor": w.siri,
        "admin": w.root,
    }
    if slim:
        w.youth_a, w.token_a, w.conversation = _chat(w.ingrid)
        w.warm, _ = _handover(w.ingrid, w.conversation, "bup-vestfold", "warm")
        return w
    # Youth A: an earlier chat with Ingrid (ended, feedback asked for), and an active one with
    # a message, a note, a pending transfer to Tor, a warm handover to BUP that A said yes to
    # and a proposal to HFU that waits for A's answer.
    w.youth_a, w.token_a, w.earlier = _chat(w.ingrid)
    chat_services.conversation_end(
        actor=Actor.for_staff(w.ingrid), conversation_id=w.earlier.id, feedback=True
    )
    w.conversation = queue.queue_request(youth=w.youth_a, target={"staff": w.ingrid.id})
    w.conversation = queue.queue_accept(user=w.ingrid, conversation_id=w.conversation.id)
    chat_services.message_send(
        actor=Actor.for_youth(w.youth_a),
        conversation_id=w.conversation.id,
        client_id="a1",
        text=SECRET_TEXT,
    )
    chat_services.note_add(
        actor=Actor.for_staff(w.ingrid),
        conversation_id=w.conversation.id,
        client_id="n1",
        text=SECRET_NOTE,
    )
    w.warm, _ = _handover(w.ingrid, w.conversation, "bup-vestfold", "warm")
    w.proposed, _ = _handover(w.ingrid, w.conversation, "hfu-tonsberg", "warm", consent=False)
    w.proposed_version = _text_version(w.youth_a, w.proposed.id)
    w.transfer = queue.transfer_offer(
        user=w.ingrid,
        conversation_id=w.conversation.id,
        target={"staff": w.tor.id},
        note="Tor passer bedre",
    )
    # A drop-in ticket Ingrid called to her room (arrived / no_show act on it).
    w.youth_d, _, w.ticket = _chat(w.ingrid, site=w.site)
    # Youth B: a handover to BUP by code. Youth C: a contact handover BUP accepted.
    _, _, conversation_b = _chat(w.ingrid)
    w.by_code, w.code = _handover(w.ingrid, conversation_b, "bup-vestfold", "code")
    _, _, w.contact_conversation = _chat(w.ingrid)
    w.accepted, _ = _handover(w.ingrid, w.contact_conversation, "bup-vestfold", "contact")
    handover_services.handover_accept(
        user=w.bup, handover_id=w.accepted.id, first_meeting_at=timezone.now() + timedelta(days=2)
    )
    w.consultation = handover_services.consultation_ask(
        user=w.ingrid, service="bup-vestfold", question=SECRET_QUESTION
    )
    w.return_code = chat_services.youth_return_code_issue(youth=w.youth_d)
    # Youth E: blocked for a day by Ingrid from a chat with her (`unblock` acts on it).
    _, _, blocked_chat = _chat(w.ingrid)
    w.block, _ = chat_services.youth_block(
        user=w.ingrid, conversation_id=blocked_chat.id, duration="24h", reason="spam"
    )
    w.device = TOTPDevice.objects.create(user=w.ingrid, name="Telefon", confirmed=True)
    return w


# ================================================================================================
# HTTP
# ================================================================================================


@dataclass(frozen=True)
class Row:
    """One URL: how to call it and what each role gets."""

    expect: dict[str, object]
    method: str = "get"
    path: object = None  # the resolver route made concrete: a string, or world → string
    data: object = None  # POST body: a dict (form), or world → dict
    json: bool = False  # send `data` as JSON
    csrf: bool = False  # a cookie-authenticated POST: refused without the CSRF token
    note: str = ""

    def expected(self, role: str):
        if role == "other_partner":
            return self.expect.get("other_partner", self.expect["partner"])
        return self.expect[role]


def everyone(outcome) -> dict:
    return dict.fromkeys(ROLES, outcome)


def login_required(**logged_in) -> dict:
    """Anonymous visitors and youth (no staff session) go to the login page."""
    return {"anonymous": LOGIN, "youth": LOGIN, **logged_in}


def staff_or_supervisor(ok) -> dict:
    return login_required(staff=ok, partner=403, supervisor=ok, admin=403)


def supervisor_only(ok=200) -> dict:
    return login_required(staff=403, partner=403, supervisor=ok, admin=403)


def partner_only(ok, *, other_partner) -> dict:
    return login_required(
        staff=403, partner=ok, supervisor=403, admin=403, other_partner=other_partner
    )


def admin_only(ok, *, others=ADMIN_LOGIN) -> dict:
    return {**everyone(others), "admin": ok}


def handover_path(name: str, suffix: str = ""):
    return lambda w: f"/partner/h/{getattr(w, name).id}/{suffix}"


def meeting_body(w) -> dict:
    when = timezone.localtime(timezone.now() + timedelta(days=2))
    return {"first_meeting_at": when.strftime("%Y-%m-%dT%H:%M"), "where": "BUP", "who": "Kari"}


HTTP: dict[str, Row] = {
    # -- youth identity and the queue: no cookies, no CSRF (docs/protocol.md) ---------------------
    "api/youth/session": Row(everyone(201), "post", "/api/youth/session"),
    "api/youth/return-code": Row(
        {**everyone(401), "youth": 201},
        "post",
        "/api/youth/return-code",
        note="the Bearer token is the only credential; a staff session gives nothing",
    ),
    "api/youth/resume": Row(
        everyone(200),
        "post",
        "/api/youth/resume",
        data=lambda w: {"return_code": w.return_code},
        json=True,
        note="the return code is the credential, whoever holds it",
    ),
    "api/queue/overview": Row(everyone(200), path="/api/queue/overview"),
    "api/queue/dropin/<slug:slug>/ticket": Row(
        everyone(201),
        "post",
        "/api/queue/dropin/tonsberg/ticket",
        data={"target": "any"},
        json=True,
        note="the arena's kiosk: public by design",
    ),
    "api/queue/dropin/<slug:slug>/qr.svg": Row(
        everyone(200), path="/api/queue/dropin/tonsberg/qr.svg"
    ),
    # -- youth pages ---------------------------------------------------------------------------
    "": Row(everyone(200), path="/"),
    "dropin/<slug:slug>/": Row(everyone(200), path="/dropin/tonsberg/"),
    "dropin/<slug:slug>/kiosk/": Row(everyone(200), path="/dropin/tonsberg/kiosk/"),
    "sw.js": Row(everyone(200), path="/sw.js"),
    "manifest.webmanifest": Row(everyone(200), path="/manifest.webmanifest"),
    "i18n/setlang/": Row(
        everyone(302), "post", "/i18n/setlang/", data={"language": "en"}, csrf=True
    ),
    # -- staff ---------------------------------------------------------------------------------
    "staff/": Row(
        {**staff_or_supervisor(200), "partner": 302},
        path="/staff/",
        note="a partner is sent on to their inbox; an admin without a staff profile is refused",
    ),
    "staff/login/": Row(everyone(200), path="/staff/login/"),
    # The second step (YOUTHHUB_REQUIRE_2FA is off in the suite: a session passes on).
    "staff/login/code/": Row(
        {**everyone(302), "anonymous": LOGIN, "youth": LOGIN}, path="/staff/login/code/"
    ),
    "staff/login/setup/": Row(
        {**everyone(302), "anonymous": LOGIN, "youth": LOGIN}, path="/staff/login/setup/"
    ),
    "staff/logout/": Row(
        everyone(LOGIN), "post", "/staff/logout/", csrf=True, note="LOGOUT_REDIRECT_URL"
    ),
    "metrics": Row(
        everyone(404), path="/metrics", note="only a scraper with YOUTHHUB_METRICS_TOKEN"
    ),
    # -- supervisors -----------------------------------------------------------------------------
    "supervisor/stats/": Row(supervisor_only(), path="/supervisor/stats/"),
    "supervisor/stats.csv": Row(supervisor_only(), path="/supervisor/stats.csv"),
    "supervisor/stats/chart/<slug:name>.svg": Row(
        supervisor_only(), path="/supervisor/stats/chart/by_day.svg"
    ),
    "supervisor/stats/now": Row(supervisor_only(), path="/supervisor/stats/now"),
    # -- partners: their own service's handovers only; another service's do not exist ----------
    "partner/": Row(partner_only(200, other_partner=200), path="/partner/"),
    "partner/code": Row(
        partner_only(200, other_partner=400),
        "post",
        "/partner/code",
        data=lambda w: {"code": w.code},
        csrf=True,
        note="another service's partner gets the same 'no match' as for a wrong code",
    ),
    "partner/consultations/<uuid:consultation_id>/answer": Row(
        partner_only(303, other_partner=400),
        "post",
        lambda w: f"/partner/consultations/{w.consultation.id}/answer",
        data={"answer": "Ja, ring oss."},
        csrf=True,
    ),
    "partner/h/<uuid:handover_id>/": Row(
        partner_only(200, other_partner=404), path=handover_path("warm")
    ),
    "partner/h/<uuid:handover_id>/accept": Row(
        partner_only(303, other_partner=404),
        "post",
        handover_path("warm", "accept"),
        data=meeting_body,
        csrf=True,
    ),
    "partner/h/<uuid:handover_id>/decline": Row(
        partner_only(303, other_partner=404),
        "post",
        handover_path("warm", "decline"),
        data={"reason": "Passer ikke", "alternative": "Helsestasjonen"},
        csrf=True,
    ),
    "partner/h/<uuid:handover_id>/met": Row(
        partner_only(303, other_partner=404), "post", handover_path("accepted", "met"), csrf=True
    ),
    "partner/chat/<uuid:conversation_id>/": Row(
        partner_only(200, other_partner=403),
        path=lambda w: f"/partner/chat/{w.conversation.id}/",
    ),
    # -- the admin site: is_staff users only (a staff profile is not enough) --------------------
    "admin/": Row(admin_only(200), path="/admin/"),
    "admin/login/": Row(
        everyone(LOGIN), path="/admin/login/", note="the admin logs in at the staff login (2FA)"
    ),
    "admin/logout/": Row(
        admin_only(LOGIN, others=302),
        "post",
        "/admin/logout/",
        csrf=True,
        note="others are sent to /admin/ (then its login); the admin to LOGOUT_REDIRECT_URL",
    ),
    "admin/password_change/": Row(admin_only(200), path="/admin/password_change/"),
    "admin/password_change/done/": Row(admin_only(200), path="/admin/password_change/done/"),
    "admin/autocomplete/": Row(
        admin_only(200),
        path="/admin/autocomplete/?app_label=handover&model_name=partnerprofile&field_name=service",
    ),
    "admin/jsi18n/": Row(admin_only(200), path="/admin/jsi18n/"),
    "admin/r/<path:content_type_id>/<path:object_id>/": Row(
        admin_only(404),
        path=lambda w: (
            f"/admin/r/{ContentType.objects.get_for_model(Service).id}/{w.bup_service.id}/"
        ),
        note="no model here has a public URL (get_absolute_url)",
    ),
    "admin/(?P<url>.*)$": Row(
        admin_only(404), path="/admin/no-such-page/", note="unknown admin pages hide behind login"
    ),
    "admin/auth/user/<id>/password/": Row(
        admin_only(200), path=lambda w: f"/admin/auth/user/{w.ingrid.id}/password/"
    ),
    # django-otp's device pages: a device's secret is never shown (OTP_ADMIN_HIDE_SENSITIVE_DATA).
    "admin/otp_totp/totpdevice/<int:pk>/config/": Row(
        admin_only(403), path=lambda w: f"/admin/otp_totp/totpdevice/{w.device.pk}/config/"
    ),
    "admin/otp_totp/totpdevice/<int:pk>/qrcode/": Row(
        admin_only(403), path=lambda w: f"/admin/otp_totp/totpdevice/{w.device.pk}/qrcode/"
    ),
}

# Every model on the admin site, and whether the admin may change it there.
ADMIN_MODELS: dict[str, tuple[object, bool]] = {
    # "app/model": (world → one of its objects, editable by the admin)
    "auth/group": (lambda w: Group.objects.get_or_create(name="Vakt")[0], True),
    "auth/user": (lambda w: w.ingrid, True),
    "staff/staffprofile": (lambda w: w.ingrid.staff_profile, True),
    "staff/cannedreply": (
        lambda w: CannedReply.objects.get_or_create(title="Hei", text="Hei!")[0],
        True,
    ),
    "audit/auditevent": (lambda w: AuditEvent.objects.first(), False),  # append-only log
    "handover/service": (lambda w: w.bup_service, True),
    "handover/partnerprofile": (lambda w: PartnerProfile.objects.get(user=w.bup), True),
    "handover/handover": (lambda w: w.warm, False),  # metadata only, read-only
    "handover/consent": (lambda w: Consent.objects.first(), False),
    "handover/consultation": (lambda w: w.consultation, False),
    "dropin/site": (lambda w: w.site, True),
    "dropin/pool": (lambda w: w.pool, True),
    "otp_totp/totpdevice": (lambda w: w.device, True),
}


def _app_index_route() -> str:
    """The admin's app index: one pattern whose regex lists the app labels."""
    labels = list(dict.fromkeys(model._meta.app_label for model in admin.site._registry))
    return "admin/^(?P<app_label>" + "|".join(labels) + ")/$"


HTTP[_app_index_route()] = Row(admin_only(200), path="/admin/handover/")


def _admin_object_path(label: str, suffix: str):
    def path(w):
        return f"/admin/{label}/{ADMIN_MODELS[label][0](w).pk}/{suffix}"

    return path


for _label, (_obj, _editable) in ADMIN_MODELS.items():
    _write = 200 if _editable else 403
    HTTP[f"admin/{_label}/"] = Row(admin_only(200), path=f"/admin/{_label}/")
    HTTP[f"admin/{_label}/add/"] = Row(admin_only(_write), path=f"/admin/{_label}/add/")
    HTTP[f"admin/{_label}/<path:object_id>/history/"] = Row(
        admin_only(200), path=_admin_object_path(_label, "history/")
    )
    HTTP[f"admin/{_label}/<path:object_id>/delete/"] = Row(
        admin_only(_write), path=_admin_object_path(_label, "delete/")
    )
    HTTP[f"admin/{_label}/<path:object_id>/change/"] = Row(
        admin_only(200),
        path=_admin_object_path(_label, "change/"),
        note="read-only models are shown, not editable",
    )
    HTTP[f"admin/{_label}/<path:object_id>/"] = Row(
        admin_only(302), path=_admin_object_path(_label, "")
    )


def resolver_routes() -> list[str]:
    """Every URL pattern of the project, as `prefix + pattern` strings."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    return list(walk(get_resolver().url_patterns))


def test_every_url_is_classified():
    """A URL that is not in the table fails here: classify it (who may open it) first."""
    routes = resolver_routes()
    missing = sorted(set(routes) - set(HTTP))
    assert not missing, f"URLs without a row in the authorisation matrix: {missing}"
    stale = sorted(set(HTTP) - set(routes))
    assert not stale, f"rows for URLs that no longer exist: {stale}"


def _clients(w) -> dict[str, dict]:
    """Per role: the cookies (a logged-in session) and headers its client sends."""
    out = {}
    for role, user in w.users.items():
        cookies = {}
        if user is not None:
            client = Client()
            client.force_login(user)
            cookies = {name: morsel.value for name, morsel in client.cookies.items()}
        out[role] = {"cookies": cookies, "headers": {}}
    out["youth"]["headers"] = {"Authorization": f"Bearer {w.token_a}"}
    return out


@pytest.fixture(scope="class")
def http_world(django_db_setup, django_db_blocker):
    """One world for every HTTP case, inside a transaction rolled back after the class; each
    test runs in a savepoint of it (pytest-django's non-transactional django_db)."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            w = build_world()
            w.clients = _clients(w)
            yield w
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def outcome(response):
    """A response as the table states it: a status code, or 'sent to a login page'."""
    if response.status_code in (301, 302, 303):
        location = response["Location"].split("?")[0]
        if location == settings.LOGIN_URL:
            return LOGIN
        if location == "/admin/login/":
            return ADMIN_LOGIN
    return response.status_code


def _value(value, w):
    return value(w) if callable(value) else value


def request(w, row: Row, role: str, *, csrf_checks: bool = False):
    client = Client(enforce_csrf_checks=csrf_checks)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    for name, value in w.clients[role]["cookies"].items():
        client.cookies[name] = value
    path = _value(row.path, w)
    data = _value(row.data, w)
    kwargs = {"headers": w.clients[role]["headers"]}
    if row.method == "get":
        return client.get(path, **kwargs)
    if row.json:
        return client.post(path, json.dumps(data or {}), content_type="application/json", **kwargs)
    return client.post(path, data or {}, **kwargs)


HTTP_CASES = [
    pytest.param(route, role, id=f"{route or '/'}-{role}")
    for route, row in HTTP.items()
    for role in (*ROLES, *(("other_partner",) if "other_partner" in row.expect else ()))
]
# A session with the password but not the second factor (no TOTP device yet: the setup step).
LOGIN_STEPS_UNVERIFIED = {"staff/login/code/": 302, "staff/login/setup/": 200}
PASSWORD_ONLY_CASES = [
    pytest.param(route, role, id=f"{route or '/'}-{role}")
    for route, row in HTTP.items()
    for role in ("supervisor", "partner", "admin")
    if row.expected(role) != row.expected("anonymous")
]


@pytest.mark.django_db
@pytest.mark.usefixtures("http_world")
class TestHttpMatrix:
    @pytest.mark.parametrize("route, role", HTTP_CASES)
    def test_who_may_open_it(self, http_world, route, role):
        row = HTTP[route]
        response = request(http_world, row, role)
        got = outcome(response)
        assert got == row.expected(role), (
            f"{row.method.upper()} {_value(row.path, http_world)} as {role}: expected "
            f"{row.expected(role)!r}, got {got!r} {row.note}"
        )

    @pytest.mark.parametrize(
        "route", [route for route, row in HTTP.items() if row.method == "post"]
    )
    def test_posts_with_a_session_need_the_csrf_token(self, http_world, route):
        """Cookie-authenticated POSTs are refused without the CSRF token; the cookie-less
        youth/queue APIs do not use one."""
        row = HTTP[route]
        if row.csrf:  # someone with a session whom the row lets in
            role = next(
                r
                for r in ("partner", "admin", "supervisor", "staff")
                if row.expected(r) not in (ADMIN_LOGIN, 401, 403)
            )
        else:
            role = "youth"
        got = outcome(request(http_world, row, role, csrf_checks=True))
        assert got == (403 if row.csrf else row.expected(role)), (route, role, got)

    @pytest.mark.parametrize("route, role", PASSWORD_ONLY_CASES)
    def test_a_password_only_session_is_logged_out_while_two_factor_is_required(
        self, http_world, settings, route, role
    ):
        """With YOUTHHUB_REQUIRE_2FA on, a session that gave the password but no code gets,
        on every URL where the role would get in, what an anonymous visitor gets (only the
        login steps themselves lead on)."""
        settings.YOUTHHUB_REQUIRE_2FA = True
        row = HTTP[route]
        expected = LOGIN_STEPS_UNVERIFIED.get(route, row.expected("anonymous"))
        got = outcome(request(http_world, row, role))
        assert got == expected, f"{route} as a password-only {role}: {got!r}, not {expected!r}"


# ================================================================================================
# WebSocket
# ================================================================================================


@pytest.fixture
def many_frames(settings):
    """Each case sends a frame and a sentinel; the per-socket rate limit is not under test."""
    settings.YOUTHHUB_FRAMES_PER_SECOND = 10_000
    settings.YOUTHHUB_FRAME_BURST = 10_000
    settings.YOUTHHUB_MESSAGES_PER_MINUTE = 10_000


CLOSED = "<closed>"
_sentinels = iter(range(1, 10**9))


async def exchange(ws, frame: dict | None) -> list[dict]:
    """Send `frame`, then a sentinel frame of an unknown type (answered `unknown_type` in every
    state of every socket, in order); return what came back for `frame`: every frame before
    the sentinel's answer, and CLOSED if the socket was closed."""
    sentinel = f"zz-sentinel-{next(_sentinels)}"
    if frame is not None:
        await ws.send_json_to(frame)
    await ws.send_json_to({"type": sentinel})
    replies = []
    while True:
        out = await ws.receive_output(timeout=5)
        if out["type"] == "websocket.close":
            replies.append({"type": CLOSED, "code": out.get("code")})
            return replies
        reply = json.loads(out["text"])
        if reply.get("code") == "unknown_type" and sentinel in reply.get("message", ""):
            return replies
        replies.append(reply)


def errors(replies) -> list[str]:
    return [r["code"] for r in replies if r["type"] == "error"]


# -- who can open which socket ------------------------------------------------------------------

WELCOME, UNAUTHORIZED = "welcome", "unauthorized"

SOCKETS: dict[str, dict[str, str]] = {
    # The youth socket knows only youth tokens: a staff, partner or admin login is no one there.
    "/ws/youth/": {**dict.fromkeys(ROLES, UNAUTHORIZED), "youth": WELCOME},
    # Staff and supervisors (a staff profile); an admin account is not staff.
    "/ws/staff/": {**dict.fromkeys(ROLES, UNAUTHORIZED), "staff": WELCOME, "supervisor": WELCOME},
    # Partners, and only into a warm handover's chat (see the frame table below).
    "/ws/partner/": {**dict.fromkeys(ROLES, UNAUTHORIZED), "partner": WELCOME},
}


def _hello(path: str, w, role: str) -> dict:
    if path == "/ws/youth/":
        # Whoever is not the youth has no token: they try one that looks like one.
        token = w.token_a if role == "youth" else "x" * 43
        return {"type": "hello", "token": token}
    if path == "/ws/partner/":
        return {"type": "hello", "conversation_id": str(w.conversation.id)}
    return {"type": "hello"}


async def role_socket(w, role: str, path: str):
    user = w.users[role]
    cookie = await database_sync_to_async(session_cookie)(user) if user is not None else None
    return await connect(path, cookie)


@pytest.mark.parametrize(
    "path, role",
    [pytest.param(path, role, id=f"{path}-{role}") for path in SOCKETS for role in ROLES],
)
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup", "many_frames")
async def test_who_may_open_which_socket(path, role):
    w = await database_sync_to_async(build_world)(slim=True)
    ws = await role_socket(w, role, path)
    replies = await exchange(ws, _hello(path, w, role))
    expected = SOCKETS[path][role]
    if expected == WELCOME:
        assert replies and replies[0]["type"] == "welcome", replies
        assert CLOSED not in [r["type"] for r in replies]
    else:
        assert errors(replies)[:1] == [UNAUTHORIZED], replies
        assert replies[-1] == {"type": CLOSED, "code": 4401}, replies
    await ws.disconnect()


# -- every frame type, sent by someone who is not part of the conversation ----------------------


@dataclass(frozen=True)
class Refused:
    code: str

    def __str__(self):
        return f"error {self.code}"


@dataclass(frozen=True)
class Own:
    """Allowed, but acts only on the sender's own things (reply: this frame type, or None)."""

    reply: str | None

    def __str__(self):
        return f"own {self.reply}"


def conv(w) -> str:
    return str(w.conversation.id)


# Youth frames name no conversation but their own (a youth has one at a time), except
# hello's conversation_id and the ids in feedback / about / consent / consent_withdraw. Sent by youth
# B, a fresh identity, (a) without a chat and (b) in a chat of their own with Sara.
YOUTH_FRAMES_BY_ANOTHER_YOUTH: dict[str, tuple[object, dict[str, object]]] = {
    # type: (frame: (world, B's token) → dict, {column: expected})
    "hello": (
        lambda w, token: {
            "type": "hello",
            "token": token,
            "conversation_id": conv(w),
            "last_seq": 0,
        },
        {"no_chat": Own("welcome"), "in_chat": Own("welcome")},
    ),
    "request": (
        lambda w, token: {"type": "request", "target": "any"},
        {"no_chat": Own("queued"), "in_chat": Refused("already_in_chat")},
    ),
    "change": (
        lambda w, token: {"type": "change", "target": "any"},
        {"no_chat": Refused("no_conversation"), "in_chat": Refused("already_in_chat")},
    ),
    "crisis": (
        lambda w, token: {"type": "crisis"},
        {"no_chat": Own("crisis_info"), "in_chat": Own("crisis_info")},
    ),
    "message": (
        lambda w, token: {"type": "message", "client_id": "b1", "text": "Hei fra B"},
        {"no_chat": Refused("no_conversation"), "in_chat": Own("message")},
    ),
    "typing": (
        lambda w, token: {"type": "typing", "active": True},
        {"no_chat": Refused("no_conversation"), "in_chat": Own(None)},
    ),
    "read": (
        lambda w, token: {"type": "read", "seq": 0},
        {"no_chat": Refused("no_conversation"), "in_chat": Own(None)},
    ),
    "sync": (
        lambda w, token: {"type": "sync", "after_seq": 0},
        {"no_chat": Refused("no_conversation"), "in_chat": Own("history")},
    ),
    "end": (
        lambda w, token: {"type": "end"},
        {"no_chat": Refused("no_conversation"), "in_chat": Own("ended")},
    ),
    "feedback": (
        lambda w, token: {
            "type": "feedback",
            "conversation_id": str(w.earlier.id),
            "scores": {"useful": 5},
        },
        {"no_chat": Refused("not_allowed"), "in_chat": Refused("not_allowed")},
    ),
    "about": (
        lambda w, token: {"type": "about", "conversation_id": conv(w), "age": "16_17"},
        {"no_chat": Refused("not_allowed"), "in_chat": Refused("not_allowed")},
    ),
    "consent": (
        lambda w, token: {
            "type": "consent",
            "handover_id": str(w.proposed.id),
            "service": "hfu-tonsberg",
            "answer": "agree",
            "text_version": w.proposed_version,
            "age_band": "16_plus",
        },
        {"no_chat": Refused("not_allowed"), "in_chat": Refused("not_allowed")},
    ),
    "consent_withdraw": (
        lambda w, token: {"type": "consent_withdraw", "handover_id": str(w.warm.id)},
        {"no_chat": Refused("not_allowed"), "in_chat": Refused("not_allowed")},
    ),
    "ping": (
        lambda w, token: {"type": "ping"},
        {"no_chat": Own("pong"), "in_chat": Own("pong")},
    ),
}

# Staff frames about youth A's conversation (Ingrid's), her transfer of it to Tor, her
# handover proposal, her drop-in ticket and A's earlier chat, sent by a colleague who serves
# the same arena (Sara) and by a supervisor (Siri). Neither is assigned to any of it.
_NOT_ALLOWED = {"staff": Refused("not_allowed"), "supervisor": Refused("not_allowed")}
STAFF_FRAMES_BY_A_COLLEAGUE: dict[str, tuple[object, dict[str, object]]] = {
    "hello": (
        lambda w: {"type": "hello", "last_seq": {conv(w): 0, str(w.earlier.id): 0}},
        {"staff": Own("welcome"), "supervisor": Own("welcome")},
    ),
    "accept": (
        lambda w: {"type": "accept", "conversation_id": conv(w)},
        {"staff": Refused("conflict"), "supervisor": Refused("conflict")},
    ),
    "claim_next": (
        lambda w: {"type": "claim_next"},
        {"staff": Refused("queue_empty"), "supervisor": Refused("queue_empty")},
    ),
    "status": (
        lambda w: {"type": "status", "status": "busy"},
        {"staff": Own("status"), "supervisor": Own("status")},
    ),
    "arrived": (lambda w: {"type": "arrived", "conversation_id": str(w.ticket.id)}, _NOT_ALLOWED),
    "no_show": (lambda w: {"type": "no_show", "conversation_id": str(w.ticket.id)}, _NOT_ALLOWED),
    "message": (
        lambda w: {"type": "message", "conversation_id": conv(w), "client_id": "s1", "text": "Hei"},
        _NOT_ALLOWED,
    ),
    "typing": (
        lambda w: {"type": "typing", "conversation_id": conv(w), "active": True},
        _NOT_ALLOWED,
    ),
    "read": (lambda w: {"type": "read", "conversation_id": conv(w), "seq": 1}, _NOT_ALLOWED),
    "sync": (lambda w: {"type": "sync", "conversation_id": conv(w), "after_seq": 0}, _NOT_ALLOWED),
    "end": (
        lambda w: {"type": "end", "conversation_id": conv(w), "tags": ["family"], "triage": "red"},
        _NOT_ALLOWED,
    ),
    "note": (
        lambda w: {"type": "note", "conversation_id": conv(w), "client_id": "n9", "text": "Notat"},
        _NOT_ALLOWED,
    ),
    "transfer": (
        lambda w: {
            "type": "transfer",
            "conversation_id": conv(w),
            "target": {"role": "health_nurse"},
            "note": "Til meg",
        },
        _NOT_ALLOWED,
    ),
    "transfer_preview": (
        lambda w: {"type": "transfer_preview", "transfer_id": str(w.transfer.id)},
        _NOT_ALLOWED,
    ),
    "transfer_accept": (
        lambda w: {"type": "transfer_accept", "transfer_id": str(w.transfer.id)},
        _NOT_ALLOWED,
    ),
    "transfer_decline": (
        lambda w: {"type": "transfer_decline", "transfer_id": str(w.transfer.id)},
        _NOT_ALLOWED,
    ),
    "transfer_cancel": (
        lambda w: {"type": "transfer_cancel", "transfer_id": str(w.transfer.id)},
        _NOT_ALLOWED,
    ),
    "earlier": (
        lambda w: {"type": "earlier", "conversation_id": conv(w), "earlier_id": str(w.earlier.id)},
        _NOT_ALLOWED,
    ),
    "capacity": (
        lambda w: {"type": "capacity", "capacity": 4},
        {"staff": Own("capacity"), "supervisor": Own("capacity")},
    ),
    "shift": (lambda w: {"type": "shift"}, {"staff": Own("shift"), "supervisor": Own("shift")}),
    "handover_propose": (
        lambda w: {
            "type": "handover_propose",
            "conversation_id": conv(w),
            "service": "dps-vestfold",
            "reach": "warm",
            "summary": SUMMARY,
        },
        _NOT_ALLOWED,
    ),
    "handover_close": (
        lambda w: {"type": "handover_close", "handover_id": str(w.proposed.id)},
        _NOT_ALLOWED,
    ),
    "consultation_ask": (
        lambda w: {"type": "consultation_ask", "service": "bup-vestfold", "question": "Et råd?"},
        {"staff": Own("consultation.sent"), "supervisor": Own("consultation.sent")},
    ),
    "consultations": (
        lambda w: {"type": "consultations"},
        {"staff": Own("consultations"), "supervisor": Own("consultations")},
    ),
    # Only the staff member assigned to the chat blocks the youth behind it (a supervisor who
    # is not in it neither); a block is lifted by whoever placed it, or by a supervisor.
    "block": (
        lambda w: {"type": "block", "conversation_id": conv(w), "duration": "1h"},
        _NOT_ALLOWED,
    ),
    "unblock": (
        lambda w: {"type": "unblock", "block_id": str(w.block.id)},
        {"staff": Refused("not_allowed"), "supervisor": Own("block.update")},
    ),
    "ping": (lambda w: {"type": "ping"}, {"staff": Own("pong"), "supervisor": Own("pong")}),
}

# Partner frames on youth A's chat: BUP (a warm handover A said yes to: the control column),
# HFU (a warm handover proposed, not consented) and BUP again on youth C's chat (a contact
# handover it accepted: no warm handover). Only a valid warm handover lets a partner in.
PARTNER_FRAMES_BY_PARTNER: dict[str, tuple[object, dict[str, object]]] = {
    "hello": (
        lambda w, conversation: {"type": "hello", "conversation_id": str(conversation.id)},
        {
            "partner": Own("welcome"),
            "other_partner": Refused("not_allowed"),
            "partner_without_warm_handover": Refused("not_allowed"),
        },
    ),
    "message": (
        lambda w, conversation: {"type": "message", "client_id": "p1", "text": "Hei fra BUP"},
        {
            "partner": Own("message"),
            "other_partner": Refused("hello_required"),
            "partner_without_warm_handover": Refused("hello_required"),
        },
    ),
    "typing": (
        lambda w, conversation: {"type": "typing", "active": True},
        {
            "partner": Own(None),
            "other_partner": Refused("hello_required"),
            "partner_without_warm_handover": Refused("hello_required"),
        },
    ),
    "sync": (
        lambda w, conversation: {"type": "sync", "after_seq": 0},
        {
            "partner": Own("history"),
            "other_partner": Refused("hello_required"),
            "partner_without_warm_handover": Refused("hello_required"),
        },
    ),
    "ping": (
        lambda w, conversation: {"type": "ping"},
        {
            "partner": Own("pong"),
            "other_partner": Refused("hello_required"),
            "partner_without_warm_handover": Refused("hello_required"),
        },
    ),
}

# A frame that is a bug today: {(table name, column, frame type): "BUG: …"}; each is run as its
# own strictly-xfailing case, so the rest of its column keeps guarding.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def test_every_frame_type_is_in_the_tables():
    assert set(YOUTH_FRAMES_BY_ANOTHER_YOUTH) == set(protocol.YOUTH_FRAMES)
    assert set(STAFF_FRAMES_BY_A_COLLEAGUE) == set(protocol.STAFF_FRAMES)
    assert set(PARTNER_FRAMES_BY_PARTNER) == set(protocol.PARTNER_FRAMES)


def victim_snapshot(w) -> dict:
    """Everything about youth A's conversations, their ticket neighbour and A's handovers."""
    ids = [w.conversation.id, w.earlier.id, w.ticket.id, w.contact_conversation.id]

    def rows(qs):
        return sorted(repr(sorted(row.items())) for row in qs.values())

    return {
        "conversations": rows(Conversation.objects.filter(id__in=ids)),
        "messages": rows(Message.objects.filter(conversation_id__in=ids)),
        "notes": rows(Note.objects.filter(conversation_id__in=ids)),
        "transfers": rows(Transfer.objects.filter(conversation_id__in=ids)),
        "feedback": rows(Feedback.objects.filter(conversation_id__in=ids)),
        "handovers": rows(Handover.objects.filter(conversation_id__in=ids)),
        "consents": rows(Consent.objects.filter(handover__conversation_id__in=ids)),
        "audit": rows(AuditEvent.objects.filter(conversation_id__in=ids)),
        "consultation": rows(Consultation.objects.filter(id=w.consultation.id)),
    }


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(name for name in before if before[name] != after.get(name))


SECRETS = (SECRET_TEXT, SECRET_NOTE, SECRET_QUESTION, SUMMARY["concern"])


def hidden_from_strangers(w) -> tuple[str, ...]:
    """What nobody outside the conversation may see: its content, and (except supervisors,
    who see every queue and transfer card) that it exists at all."""
    return (*SECRETS, str(w.conversation.id), str(w.earlier.id), str(w.ticket.id))


def check_reply(replies: list[dict], expected, hidden: tuple[str, ...]) -> list[str]:
    """What is wrong with `replies` for `expected` (empty: all good)."""
    problems = []
    codes = errors(replies)
    if any(r["type"] == CLOSED for r in replies):
        problems.append(f"the socket was closed: {replies}")
    if isinstance(expected, Refused):
        if codes != [expected.code]:
            problems.append(f"expected error {expected.code}, got {replies}")
    else:
        if codes:
            problems.append(f"expected {expected}, got errors {codes}: {replies}")
        elif expected.reply is not None and expected.reply not in [r["type"] for r in replies]:
            problems.append(f"expected a {expected.reply} frame, got {replies}")
    # Nothing of someone else's conversation reaches them: not its id, not its content.
    text = json.dumps(replies, ensure_ascii=False)
    for secret in hidden:
        if secret in text:
            problems.append(f"leaked {secret!r}: {replies}")
    return problems


def _cases(table_name: str, table: dict, columns) -> list:
    """One case per column with every frame type that is fine today, and one strictly
    xfailing case per frame type with a known bug."""
    cases = []
    for column in columns:
        bugs = {
            frame_type: KNOWN_BUGS[(table_name, column, frame_type)]
            for frame_type in table
            if (table_name, column, frame_type) in KNOWN_BUGS
        }
        fine = [frame_type for frame_type in table if frame_type not in bugs]
        cases.append(pytest.param(column, fine, id=column))
        for frame_type, reason in bugs.items():
            mark = pytest.mark.xfail(strict=True, reason=reason)
            cases.append(
                pytest.param(column, [frame_type], id=f"{column}-{frame_type}", marks=mark)
            )
    return cases


async def _run_case(w, frame_type, expected, ws, frame, hidden=None) -> list[str]:
    """Send one frame and check the reply, the leak rule and what was written: nothing at all
    for a refused frame, nothing of the other conversation's for an allowed one."""
    refused = isinstance(expected, Refused)

    def snapshot():
        return db_snapshot() if refused else victim_snapshot(w)

    before = await database_sync_to_async(snapshot)()
    replies = await exchange(ws, frame)
    hidden = hidden_from_strangers(w) if hidden is None else hidden
    problems = check_reply(replies, expected, hidden)
    after = await database_sync_to_async(snapshot)()
    if refused and before != after:
        problems.append(f"refused, yet wrote to {changed_tables(before, after)}")
    elif before != after:
        problems.append(f"changed the other conversation's {changed_tables(before, after)}")
    return [f"{frame_type}: {problem}" for problem in problems]


def _in_chat_with_sara(w):
    youth, token = chat_services.youth_session_create()
    conversation = queue.queue_request(youth=youth, target={"staff": w.sara.id})
    queue.queue_accept(user=w.sara, conversation_id=conversation.id)
    return token


async def _youth_hello(token):
    ws = await connect("/ws/youth/")
    replies = await exchange(ws, {"type": "hello", "token": token})
    assert replies[0]["type"] == "welcome", replies
    return ws, replies


@pytest.mark.parametrize(
    "column, frame_types", _cases("youth", YOUTH_FRAMES_BY_ANOTHER_YOUTH, ("no_chat", "in_chat"))
)
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup", "many_frames")
async def test_a_youth_cannot_act_on_another_youths_conversation(column, frame_types):
    w = await database_sync_to_async(build_world)()
    victim, _ = await _youth_hello(w.token_a)
    problems = []
    for frame_type in frame_types:
        # Each frame from a new youth B (a frame such as `request` changes B's own state).
        if column == "in_chat":
            token = await database_sync_to_async(_in_chat_with_sara)(w)
        else:
            _, token = await database_sync_to_async(chat_services.youth_session_create)()
        build, expected = YOUTH_FRAMES_BY_ANOTHER_YOUTH[frame_type]
        ws = await connect("/ws/youth/")
        if frame_type != "hello":
            await exchange(ws, {"type": "hello", "token": token})
        problems += await _run_case(w, frame_type, expected[column], ws, build(w, token))
        await ws.disconnect()
    # A's own socket heard nothing of it all.
    assert await exchange(victim, None) == []
    await victim.disconnect()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "column, frame_types", _cases("staff", STAFF_FRAMES_BY_A_COLLEAGUE, ("staff", "supervisor"))
)
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup", "many_frames")
async def test_staff_cannot_act_on_a_conversation_they_are_not_assigned_to(column, frame_types):
    w = await database_sync_to_async(build_world)()
    user = w.sara if column == "staff" else w.siri
    ws = await connect("/ws/staff/", await database_sync_to_async(session_cookie)(user))
    problems = []
    if "hello" not in frame_types:
        await exchange(ws, {"type": "hello"})
    for frame_type in sorted(frame_types, key=lambda t: t != "hello"):  # hello first
        build, expected = STAFF_FRAMES_BY_A_COLLEAGUE[frame_type]
        # A supervisor sees every queue and transfer card (ids), never their content.
        hidden = SECRETS if column == "supervisor" else None
        problems += await _run_case(w, frame_type, expected[column], ws, build(w), hidden)
    await ws.disconnect()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "column, frame_types",
    _cases(
        "partner",
        PARTNER_FRAMES_BY_PARTNER,
        ("partner", "other_partner", "partner_without_warm_handover"),
    ),
)
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup", "many_frames")
async def test_a_partner_needs_a_valid_warm_handover(column, frame_types):
    w = await database_sync_to_async(build_world)()
    user, conversation = {
        "partner": (w.bup, w.conversation),
        "other_partner": (w.hfu, w.conversation),
        "partner_without_warm_handover": (w.bup, w.contact_conversation),
    }[column]
    ws = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(user))
    problems = []
    if "hello" not in frame_types:
        await exchange(ws, {"type": "hello", "conversation_id": str(conversation.id)})
    for frame_type in sorted(frame_types, key=lambda t: t != "hello"):
        build, by_column = PARTNER_FRAMES_BY_PARTNER[frame_type]
        frame, expected = build(w, conversation), by_column[column]
        if column == "partner" and isinstance(expected, Own):
            # The control column acts in A's chat: only the victim checks are off.
            replies = await exchange(ws, frame)
            # Not even the partner in the chat sees what was said before they joined.
            problems += [f"{frame_type}: {p}" for p in check_reply(replies, expected, SECRETS)]
            continue
        problems += await _run_case(w, frame_type, expected, ws, frame)
    await ws.disconnect()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path, foreign",
    [
        pytest.param(
            "/ws/youth/", set(protocol.STAFF_FRAMES) - set(protocol.YOUTH_FRAMES), id="youth"
        ),
        pytest.param(
            "/ws/staff/", set(protocol.YOUTH_FRAMES) - set(protocol.STAFF_FRAMES), id="staff"
        ),
        pytest.param(
            "/ws/partner/",
            (set(protocol.YOUTH_FRAMES) | set(protocol.STAFF_FRAMES))
            - set(protocol.PARTNER_FRAMES),
            id="partner",
        ),
    ],
)
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup", "many_frames")
async def test_another_sockets_frame_types_are_unknown(path, foreign):
    """A youth cannot send staff frames (accept, note, transfer …), staff no youth frames
    (consent, feedback …), a partner neither (not even end)."""
    w = await database_sync_to_async(build_world)(slim=True)
    role = {"/ws/youth/": "youth", "/ws/staff/": "staff", "/ws/partner/": "partner"}[path]
    ws = await role_socket(w, role, path)
    assert (await exchange(ws, _hello(path, w, role)))[0]["type"] == "welcome"
    before = await database_sync_to_async(db_snapshot)()
    got = {}
    for frame_type in sorted(foreign):
        got[frame_type] = errors(await exchange(ws, {"type": frame_type}))
    assert got == {t: ["unknown_type"] for t in foreign}
    assert changed_tables(before, await database_sync_to_async(db_snapshot)()) == []
    await ws.disconnect()
