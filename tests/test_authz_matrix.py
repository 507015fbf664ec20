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
- WebSocket: every socket endpoint (the guard `test_every_socket_and_frame_type_is_in_the_table`
  compares with chat/routing.py and each consumer's frame registry in chat/protocol.py) ×
  every role × every frame type of that endpoint. Roles: anonymous, youth (A, in a chat with
  Ingrid), other_youth (B, in a chat of their own with Sara), assigned_staff (Ingrid: A's
  chat, her drop-in tickets, the transfers to and from her), unassigned_staff (Sara, same
  arena), supervisor (Siri, in none of it), partner (BUP: A said yes to its warm handover),
  other_partner (HFU: its warm handover waits for A's answer), admin; on one socket also
  new_youth (no chat) and partner_no_warm_handover (BUP on a chat it has a contact handover
  for). Outcomes: Allowed (the success frame, and exactly the tables the frame writes),
  Refused (an `error` with a stable code; nothing written), Shut (`unauthorized`, then the
  socket closes with 4401: at connect, or at hello on the youth socket; nothing written).
  For whoever is not part of A's chat, nothing of it changes and nothing of it reaches them.
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
from django.utils import timezone, translation
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
    `slim`: only the people, youth A's chat and its warm handover to BUP. In the default
    language, which the sockets speak: a consent counts for the wording shown in it."""
    with quiet_events(), translation.override(settings.LANGUAGE_CODE):
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
    _build_for_insiders(w)
    return w


def _build_for_insiders(w) -> None:
    """What the WebSocket table's other youths act in, and what its insiders act on by right:
    each allowed frame needs a thing of its own (an accepted request cannot be claimed)."""
    # Youth B in a chat of their own with Sara; youth N without any.
    youth_b, w.token_b = chat_services.youth_session_create()
    conversation_b = queue.queue_request(youth=youth_b, target={"staff": w.sara.id})
    queue.queue_accept(user=w.sara, conversation_id=conversation_b.id)
    _, w.token_n = chat_services.youth_session_create()
    # Two youths waiting for Ingrid by name (accept, claim_next): nobody else may take them.
    w.asked_for_ingrid = [
        queue.queue_request(
            youth=chat_services.youth_session_create()[0], target={"staff": w.ingrid.id}
        )
        for _ in range(2)
    ]
    # A second called ticket (no_show; `ticket` is for arrived), a chat to block.
    _, _, w.ticket_no_show = _chat(w.ingrid, site=w.site)
    _, _, w.to_block = _chat(w.ingrid)
    # A chat of Ingrid's with a warm handover to BUP that BUP joined: she may pass it to them.
    _, _, to_pass = _chat(w.ingrid)
    w.passable, _ = _handover(w.ingrid, to_pass, "bup-vestfold", "warm")
    handover_services.handover_partner_join(user=w.bup, conversation_id=to_pass.id)
    # Tor offers two chats to Ingrid by name (preview and accept the one, decline the other).
    w.to_ingrid, w.to_ingrid_declined = (
        queue.transfer_offer(
            user=w.tor,
            conversation_id=_chat(w.tor)[2].id,
            target={"staff": w.ingrid.id},
            note="Ingrid kjenner saken",
        )
        for _ in range(2)
    )


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
    "partner/h/<uuid:handover_id>/status": Row(
        partner_only(200, other_partner=404),
        path=handover_path("warm", "status"),
        note="the open detail page asks whether it may still show the summary (no content)",
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


# -- outcomes -----------------------------------------------------------------------------------

MESSAGE = "chat.Message"
CONVERSATION = "chat.Conversation"
AUDIT = "audit.AuditEvent"
STATS = "stats.Count"


@dataclass(frozen=True)
class Allowed:
    """The success frame (None: the frame has no reply) and exactly the tables it writes."""

    reply: str | None
    writes: frozenset[str] = frozenset()

    def __init__(self, reply: str | None, *writes: str):
        object.__setattr__(self, "reply", reply)
        object.__setattr__(self, "writes", frozenset(writes))

    def __str__(self):
        return f"allowed: {self.reply} writing {sorted(self.writes)}"


@dataclass(frozen=True)
class Refused:
    """An `error` with this stable code; the socket stays open and nothing is written."""

    code: str

    def __str__(self):
        return f"error {self.code}"


@dataclass(frozen=True)
class Shut:
    """`error unauthorized`, then the socket closes with 4401; nothing is written."""

    def __str__(self):
        return "unauthorized, closed 4401"


SHUT = Shut()
HELLO_REQUIRED = Refused("hello_required")
NOT_ALLOWED = Refused("not_allowed")


# -- roles: who each one is in the world --------------------------------------------------------

WS_ROLES = (
    "anonymous",
    "youth",
    "other_youth",
    "assigned_staff",
    "unassigned_staff",
    "supervisor",
    "partner",
    "other_partner",
    "admin",
)
FAKE_TOKEN = "x" * 43  # what someone without a youth token says in a youth hello


@dataclass(frozen=True)
class Who:
    """Who a role is in the world `build_world` makes, and what of A's chat is theirs."""

    user: str | None = None  # world attribute: the login whose session cookie the socket sends
    token: str | None = None  # world attribute: the youth token said in hello
    conversation: str = "conversation"  # world attribute: the chat a partner's hello names
    insider: bool = False  # in youth A's chat: acts on it by right (no victim checks)
    must_not_see: str = "all"  # of A's chat: "all" (content and ids), "content", "" (nothing)


WHO: dict[str, Who] = {
    "anonymous": Who(),
    "youth": Who(token="token_a", insider=True, must_not_see=""),
    "other_youth": Who(token="token_b"),
    "new_youth": Who(token="token_n"),
    "assigned_staff": Who(user="ingrid", insider=True, must_not_see=""),
    "unassigned_staff": Who(user="sara"),
    # A supervisor sees every queue and transfer card (ids), never their content.
    "supervisor": Who(user="siri", must_not_see="content"),
    # Not even the partner in the chat sees what was said before they joined.
    "partner": Who(user="bup", insider=True, must_not_see="content"),
    "other_partner": Who(user="hfu"),
    "partner_no_warm_handover": Who(user="bup", conversation="contact_conversation"),
    "admin": Who(user="root"),
}


# -- the table: socket → frame type → {role: outcome} -------------------------------------------


@dataclass(frozen=True)
class On:
    """One frame type: how to build it ((world, me) → dict) and what each column gets."""

    build: object
    expect: dict[str, object]


def on(build, **expect) -> On:
    return On(build, expect)


@dataclass(frozen=True)
class Socket:
    """One endpoint. `columns`: the roles it lets in (their outcome is in each row); everyone
    else is shut out at `shut_at`: at "connect" (a login of the wrong role), or at "hello" (no
    youth token: every frame before it is `hello_required`)."""

    columns: tuple[str, ...]
    shut_at: str
    rows: dict[str, On]

    @property
    def roles(self) -> tuple[str, ...]:
        return (*WS_ROLES, *(c for c in self.columns if c not in WS_ROLES))

    def expected(self, role: str, frame_type: str):
        if role in self.columns:
            return self.rows[frame_type].expect[role]
        if self.shut_at == "connect" or frame_type == "hello":
            return SHUT
        return HELLO_REQUIRED


def conv(w) -> str:
    return str(w.conversation.id)


# Youth frames name no conversation but their own (a youth has one at a time), except hello's
# conversation_id and the ids in feedback / about / consent / consent_withdraw. Each column runs its
# rows in this order on one socket: for youth A a story (in a chat, it ends, a new request).
YOUTH_COLUMNS = ("youth", "other_youth", "new_youth")


def youth_row(frame, youth, other_youth, new_youth=None) -> On:
    return on(frame, youth=youth, other_youth=other_youth, new_youth=new_youth or other_youth)


NO_CHAT = Refused("no_conversation")
YOUTH_SOCKET = Socket(
    YOUTH_COLUMNS,
    "hello",
    {
        "hello": youth_row(
            lambda w, me: {
                "type": "hello",
                "token": me.token,
                "conversation_id": conv(w),  # A's: B and N get their own, or none
                "last_seq": 0,
            },
            Allowed("welcome"),
            Allowed("welcome"),
        ),
        "message": youth_row(
            lambda w, me: {"type": "message", "client_id": "y1", "text": "Hei"},
            Allowed("message", MESSAGE, CONVERSATION),
            Allowed("message", MESSAGE, CONVERSATION),
            NO_CHAT,
        ),
        "typing": youth_row(
            lambda w, me: {"type": "typing", "active": True}, Allowed(None), Allowed(None), NO_CHAT
        ),
        "read": youth_row(
            lambda w, me: {"type": "read", "seq": 1},
            Allowed(None, CONVERSATION),
            Allowed(None, CONVERSATION),
            NO_CHAT,
        ),
        "sync": youth_row(
            lambda w, me: {"type": "sync", "after_seq": 0},
            Allowed("history"),
            Allowed("history"),
            NO_CHAT,
        ),
        # Without a chat, crisis starts one: N is in a chat from here on.
        "crisis": youth_row(
            lambda w, me: {"type": "crisis"},
            Allowed("crisis_info", CONVERSATION),
            Allowed("crisis_info", CONVERSATION),
            Allowed("crisis_info", CONVERSATION, "chat.ConversationKey"),
        ),
        "feedback": youth_row(
            lambda w, me: {
                "type": "feedback",
                "conversation_id": str(w.earlier.id),  # A's earlier chat
                "scores": {"useful": 5},
            },
            Allowed("feedback.thanks", "chat.Feedback", STATS),
            NOT_ALLOWED,
        ),
        "about": youth_row(
            lambda w, me: {"type": "about", "conversation_id": conv(w), "age": "16_17"},
            Allowed("about.thanks", STATS),  # counts only: nothing on the conversation
            NOT_ALLOWED,
        ),
        "consent": youth_row(
            lambda w, me: {
                "type": "consent",
                "handover_id": str(w.proposed.id),  # proposed to A, not answered yet
                "service": "hfu-tonsberg",
                "answer": "agree",
                "text_version": w.proposed_version,
                "age_band": "16_plus",
            },
            Allowed("consent.result", "handover.Consent", "handover.Handover", AUDIT, STATS),
            NOT_ALLOWED,
        ),
        "consent_withdraw": youth_row(
            lambda w, me: {"type": "consent_withdraw", "handover_id": str(w.warm.id)},
            Allowed(
                "handover.update",
                "handover.Consent",
                "handover.Handover",
                "handover.HandoverKey",  # destroyed: BUP loses access at once
                AUDIT,
            ),
            NOT_ALLOWED,
        ),
        "ping": youth_row(lambda w, me: {"type": "ping"}, Allowed("pong"), Allowed("pong")),
        # A's chat ends with Ingrid's transfer offer still pending: it is withdrawn (audited).
        "end": youth_row(
            lambda w, me: {"type": "end"},
            Allowed("ended", CONVERSATION, "chat.Transfer", STATS, AUDIT),
            Allowed("ended", CONVERSATION, STATS),
        ),
        "request": youth_row(
            lambda w, me: {"type": "request", "target": "any"},
            Allowed("queued", CONVERSATION, "chat.ConversationKey"),
            Allowed("queued", CONVERSATION, "chat.ConversationKey"),
        ),
        "change": youth_row(
            lambda w, me: {"type": "change", "target": {"role": "psychologist"}},
            Allowed("queued", CONVERSATION),
            Allowed("queued", CONVERSATION),
        ),
    },
)


# Staff frames about youth A's chat (Ingrid's), her tickets, her handover proposal, A's earlier
# chat, Ingrid's transfer of A's chat to Tor and Tor's transfers to her. Sara (a colleague at
# the same arena) and Siri (a supervisor) are in none of it. Ingrid runs the rows in this
# order on one socket: a story of a shift (A's chat ends last).
STAFF_COLUMNS = ("assigned_staff", "unassigned_staff", "supervisor")


def staff_row(frame, assigned, others=NOT_ALLOWED, *, supervisor=None) -> On:
    """Ingrid's outcome, and Sara's (Siri's too unless given)."""
    return on(
        frame, assigned_staff=assigned, unassigned_staff=others, supervisor=supervisor or others
    )


def everyone_in(frame, outcome) -> On:
    return on(frame, **dict.fromkeys(STAFF_COLUMNS, outcome))


def staff_frame(frame_type: str, **fields):
    """A frame builder: `fields` are values, or world → value."""
    return lambda w, me: {
        "type": frame_type,
        **{key: value(w) if callable(value) else value for key, value in fields.items()},
    }


def ids(name: str, index: int | None = None):
    def get(w):
        obj = getattr(w, name)
        return str((obj if index is None else obj[index]).id)

    return get


TAKE = Allowed("assigned", CONVERSATION)
STAFF_SOCKET = Socket(
    STAFF_COLUMNS,
    "connect",
    {
        "hello": everyone_in(
            staff_frame("hello", last_seq=lambda w: {conv(w): 0, str(w.earlier.id): 0}),
            Allowed("welcome"),
        ),
        # Both youths asked for Ingrid by name: nobody else may take them.
        "accept": staff_row(
            staff_frame("accept", conversation_id=ids("asked_for_ingrid", 0)),
            TAKE,
            Refused("not_chosen"),
        ),
        "claim_next": staff_row(staff_frame("claim_next"), TAKE, Refused("queue_empty")),
        "arrived": staff_row(staff_frame("arrived", conversation_id=ids("ticket")), TAKE),
        "no_show": staff_row(
            staff_frame("no_show", conversation_id=ids("ticket_no_show")),
            Allowed("ended", CONVERSATION, STATS),
        ),
        "transfer_preview": staff_row(
            staff_frame("transfer_preview", transfer_id=ids("to_ingrid")),
            Allowed("transfer.preview", AUDIT),
        ),
        "transfer_accept": staff_row(
            staff_frame("transfer_accept", transfer_id=ids("to_ingrid")),
            Allowed("assigned", CONVERSATION, "chat.Transfer", AUDIT),
        ),
        "transfer_decline": staff_row(
            staff_frame("transfer_decline", transfer_id=ids("to_ingrid_declined")),
            Allowed(None, "chat.Transfer", AUDIT),
        ),
        "transfer_cancel": staff_row(
            staff_frame("transfer_cancel", transfer_id=ids("transfer")),
            Allowed(None, "chat.Transfer", AUDIT),
        ),
        "transfer": staff_row(
            staff_frame(
                "transfer", conversation_id=conv, target={"role": "health_nurse"}, note="Til deg"
            ),
            Allowed("transfer.offer", "chat.Transfer", "chat.Note", AUDIT),
        ),
        "message": staff_row(
            staff_frame("message", conversation_id=conv, client_id="s1", text="Hei"),
            Allowed("message", MESSAGE, CONVERSATION),
        ),
        "typing": staff_row(
            staff_frame("typing", conversation_id=conv, active=True), Allowed(None)
        ),
        "read": staff_row(
            staff_frame("read", conversation_id=conv, seq=1), Allowed(None, CONVERSATION)
        ),
        "sync": staff_row(
            staff_frame("sync", conversation_id=conv, after_seq=0), Allowed("history")
        ),
        "note": staff_row(
            staff_frame("note", conversation_id=conv, client_id="n9", text="Notat"),
            Allowed("note", "chat.Note", AUDIT),
        ),
        "earlier": staff_row(
            staff_frame("earlier", conversation_id=conv, earlier_id=ids("earlier")),
            Allowed("earlier", AUDIT),
        ),
        "handover_propose": staff_row(
            staff_frame(
                "handover_propose",
                conversation_id=conv,
                service="dps-vestfold",
                reach="warm",
                summary=SUMMARY,
            ),
            Allowed("handover.update", "handover.Handover", "handover.HandoverKey", AUDIT),
        ),
        "handover_revise": staff_row(
            staff_frame(
                "handover_revise", handover_id=ids("proposed"), reach="contact", summary=SUMMARY
            ),
            Allowed("handover.update", "handover.Handover", AUDIT),
        ),
        "handover_close": staff_row(
            staff_frame("handover_close", handover_id=ids("proposed")),
            Allowed("handover.update", "handover.Handover", "handover.HandoverKey", AUDIT),
        ),
        # Only the staff member in the chat passes it to the partner who joined it.
        "handover_pass": staff_row(
            staff_frame("handover_pass", handover_id=ids("passable")),
            Allowed("passed", CONVERSATION, "handover.Handover", AUDIT),
        ),
        "consultation_ask": everyone_in(
            staff_frame("consultation_ask", service="bup-vestfold", question="Et råd?"),
            Allowed("consultation.sent", "handover.Consultation", AUDIT),
        ),
        "consultations": everyone_in(staff_frame("consultations"), Allowed("consultations")),
        # Only the staff member in the chat blocks the youth behind it (a supervisor who is
        # not in it neither); a block is lifted by whoever placed it, or by a supervisor.
        "block": staff_row(
            staff_frame("block", conversation_id=ids("to_block"), duration="1h"),
            Allowed("block.update", "chat.Block", CONVERSATION, STATS, AUDIT),
        ),
        "unblock": staff_row(
            staff_frame("unblock", block_id=ids("block")),
            Allowed("block.update", "chat.Block", AUDIT),
            supervisor=Allowed("block.update", "chat.Block", AUDIT),
        ),
        "status": everyone_in(
            staff_frame("status", status="busy"), Allowed("status", "staff.StaffProfile")
        ),
        "capacity": everyone_in(
            staff_frame("capacity", capacity=4), Allowed("capacity", "staff.StaffProfile")
        ),
        "shift": everyone_in(staff_frame("shift"), Allowed("shift")),
        "end": staff_row(
            staff_frame("end", conversation_id=conv, tags=["family"], triage="red"),
            Allowed("ended", CONVERSATION, "chat.Transfer", STATS, AUDIT),
        ),
        "ping": everyone_in(staff_frame("ping"), Allowed("pong")),
    },
)


# Partner frames: BUP in A's chat (a warm handover A said yes to), HFU in A's chat (a warm
# handover proposed, not answered) and BUP in youth C's chat (a contact handover it accepted,
# no warm one). Only a valid warm handover lets a partner in; the rest is hello_required.
PARTNER_COLUMNS = ("partner", "other_partner", "partner_no_warm_handover")


def partner_row(frame, partner) -> On:
    return on(
        frame,
        partner=partner,
        other_partner=HELLO_REQUIRED,
        partner_no_warm_handover=HELLO_REQUIRED,
    )


PARTNER_SOCKET = Socket(
    PARTNER_COLUMNS,
    "connect",
    {
        "hello": on(
            lambda w, me: {"type": "hello", "conversation_id": str(me.conversation.id)},
            partner=Allowed("welcome", "handover.Handover", AUDIT),
            other_partner=NOT_ALLOWED,
            partner_no_warm_handover=NOT_ALLOWED,
        ),
        "message": partner_row(
            lambda w, me: {"type": "message", "client_id": "p1", "text": "Hei fra BUP"},
            Allowed("message", MESSAGE, CONVERSATION),
        ),
        "typing": partner_row(lambda w, me: {"type": "typing", "active": True}, Allowed(None)),
        # A partner's read receipt counts once the chat is passed to them: none stored here.
        "read": partner_row(lambda w, me: {"type": "read", "seq": 1}, Allowed(None)),
        "sync": partner_row(lambda w, me: {"type": "sync", "after_seq": 0}, Allowed("history")),
        # Ingrid leads A's chat: only once she passed it to BUP may BUP end it.
        "end": partner_row(lambda w, me: {"type": "end"}, NOT_ALLOWED),
        "ping": partner_row(lambda w, me: {"type": "ping"}, Allowed("pong")),
    },
)

WS: dict[str, Socket] = {
    "/ws/youth/": YOUTH_SOCKET,
    "/ws/staff/": STAFF_SOCKET,
    "/ws/partner/": PARTNER_SOCKET,
}

# A cell that is a bug today: {(path, role, frame type): "BUG: …"}. Each is run as its own
# strictly-xfailing case (the column's rows up to it, less other bugs), so the rest of its
# column keeps guarding.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def websocket_routes() -> dict[str, type]:
    """Every WebSocket path of chat/routing.py and its consumer class."""
    from chat.routing import websocket_urlpatterns

    return {"/" + str(p.pattern): p.callback.consumer_class for p in websocket_urlpatterns}


def test_every_socket_and_frame_type_is_in_the_table():
    """A new socket or frame type fails here: give it a row (who may send it) first."""
    routes = websocket_routes()
    assert sorted(WS) == sorted(routes)
    for path, consumer in routes.items():
        assert set(WS[path].rows) == set(consumer.frames), path
    assert routes["/ws/youth/"].frames is protocol.YOUTH_FRAMES
    assert routes["/ws/staff/"].frames is protocol.STAFF_FRAMES
    assert routes["/ws/partner/"].frames is protocol.PARTNER_FRAMES


def test_every_cell_of_the_table_has_an_outcome():
    """Each row names exactly its socket's columns; every role has a known identity."""
    for path, socket in WS.items():
        for frame_type, row in socket.rows.items():
            assert set(row.expect) == set(socket.columns), (path, frame_type)
            for role in socket.roles:
                assert isinstance(socket.expected(role, frame_type), Allowed | Refused | Shut), (
                    path,
                    role,
                    frame_type,
                )
        assert set(socket.roles) <= set(WHO), path


# -- running one column -------------------------------------------------------------------------


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


def must_not_see(w, who: Who) -> tuple[str, ...]:
    """What of A's chat may not reach `who`: its content, and (for strangers) that it exists."""
    if who.must_not_see == "all":
        return (*SECRETS, str(w.conversation.id), str(w.earlier.id), str(w.ticket.id))
    return SECRETS if who.must_not_see == "content" else ()


def check_reply(replies: list[dict], expected, hidden: tuple[str, ...]) -> list[str]:
    """What is wrong with `replies` for `expected` (empty: all good)."""
    problems = []
    codes = errors(replies)
    closed = [r for r in replies if r["type"] == CLOSED]
    if isinstance(expected, Shut):
        if codes != ["unauthorized"] or closed != [{"type": CLOSED, "code": 4401}]:
            problems.append(f"expected {expected}, got {replies}")
    elif closed:
        problems.append(f"the socket was closed: {replies}")
    elif isinstance(expected, Refused):
        if codes != [expected.code]:
            problems.append(f"expected error {expected.code}, got {replies}")
    elif codes:
        problems.append(f"expected {expected}, got errors {codes}: {replies}")
    elif expected.reply is not None and expected.reply not in [r["type"] for r in replies]:
        problems.append(f"expected a {expected.reply} frame, got {replies}")
    text = json.dumps(replies, ensure_ascii=False)
    for secret in hidden:
        if secret in text:
            problems.append(f"leaked {secret!r}: {replies}")
    return problems


class Writes:
    """Checks what each frame wrote against db_snapshot() taken at checkpoints: around each
    allowed frame (exactly its `writes`), and around each run of refused or shut-out frames
    (nothing at all). One snapshot ends a run and starts the next."""

    def __init__(self):
        self.before = None
        self.quiet: list[str] = []  # refused / shut-out frames since `before`

    async def snapshot(self) -> dict:
        return await database_sync_to_async(db_snapshot)()

    async def start(self):
        self.before = await self.snapshot()

    async def end_quiet_run(self) -> list[str]:
        if not self.quiet:
            return []
        after = await self.snapshot()
        wrote = changed_tables(self.before, after)
        run, self.quiet, self.before = self.quiet, [], after
        return [f"refused, yet one of {run} wrote to {wrote}"] if wrote else []

    async def allowed(self, label: str, expected: Allowed) -> list[str]:
        after = await self.snapshot()
        wrote = changed_tables(self.before, after)
        self.before = after
        should = sorted(expected.writes)
        return [] if wrote == should else [f"{label}: wrote {wrote}, expected {should}"]


async def run_column(w, path: str, role: str, frame_types: list[str], cookie, writes) -> list:
    """Send `role`'s frames in table order on one socket (a new one after each close) and
    return what is wrong: replies, leaks, and what was written."""
    socket, who = WS[path], WHO[role]
    me = _me(w, who)
    watch_victim = not who.insider and any(
        isinstance(socket.expected(role, t), Allowed) for t in frame_types
    )
    victim_before = await database_sync_to_async(victim_snapshot)(w) if watch_victim else None
    problems, ws = [], None
    for frame_type in frame_types:
        label = f"{role} {frame_type}"
        expected = socket.expected(role, frame_type)
        allowed = isinstance(expected, Allowed)
        if allowed:
            problems += await writes.end_quiet_run()
        ws = ws or await connect(path, cookie)
        replies = await exchange(ws, socket.rows[frame_type].build(w, me))
        problems += [f"{label}: {p}" for p in check_reply(replies, expected, must_not_see(w, who))]
        if allowed:
            problems += await writes.allowed(label, expected)
        else:
            writes.quiet.append(label)
        if any(r["type"] == CLOSED for r in replies):
            await ws.disconnect()
            ws = None
    if ws is not None:
        await ws.disconnect()
    if watch_victim:
        victim_after = await database_sync_to_async(victim_snapshot)(w)
        if victim_after != victim_before:
            problems.append(f"{role} changed A's {changed_tables(victim_before, victim_after)}")
    return problems


SHUT_OUT = "shut_out"


def ws_cases() -> list:
    """Per socket: one case per column (the roles it lets in: each writes, so each gets a
    world of its own), one for every role it shuts out (they write nothing: one world), and
    one strictly xfailing case per known bug (its column's rows up to it, less other bugs)."""
    cases = []
    for path, socket in WS.items():
        shut_out = tuple(role for role in socket.roles if role not in socket.columns)
        for column in (*socket.columns, SHUT_OUT):
            roles = shut_out if column == SHUT_OUT else (column,)
            for role in roles:
                bugs = [t for t in socket.rows if (path, role, t) in KNOWN_BUGS]
                for frame_type in bugs:
                    upto = list(socket.rows)[: list(socket.rows).index(frame_type)]
                    frames = {role: [t for t in upto if t not in bugs] + [frame_type]}
                    mark = pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[path, role, frame_type])
                    cases.append(
                        pytest.param(path, frames, id=f"{path}-{role}-{frame_type}", marks=mark)
                    )
            frames = {
                role: [t for t in socket.rows if (path, role, t) not in KNOWN_BUGS]
                for role in roles
            }
            cases.append(pytest.param(path, frames, id=f"{path}-{column}"))
    return cases


async def _youth_hello(token):
    ws = await connect("/ws/youth/")
    replies = await exchange(ws, {"type": "hello", "token": token})
    assert replies[0]["type"] == "welcome", replies
    return ws


def _me(w, who: Who) -> SimpleNamespace:
    token = getattr(w, who.token) if who.token else FAKE_TOKEN
    return SimpleNamespace(token=token, conversation=getattr(w, who.conversation))


async def _cookie(w, who: Who) -> bytes | None:
    if who.user is None:
        return None  # anonymous, and a youth: a youth has no login
    return await database_sync_to_async(session_cookie)(getattr(w, who.user))


@pytest.mark.parametrize("path, frames_by_role", ws_cases())
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup", "many_frames")
async def test_who_may_send_which_frame(path, frames_by_role):
    """Each role's frames as the table says, exactly the writes of an allowed frame and none
    of a refused one. Youth A hears nothing of what anyone outside A's chat does."""
    w = await database_sync_to_async(build_world)()
    insider = any(WHO[role].insider and role in WS[path].columns for role in frames_by_role)
    victim = None if insider else await _youth_hello(w.token_a)
    # Logging in writes last_login: before the first snapshot.
    cookies = {role: await _cookie(w, WHO[role]) for role in frames_by_role}
    writes = Writes()
    await writes.start()
    problems = []
    for role, frame_types in frames_by_role.items():
        problems += await run_column(w, path, role, frame_types, cookies[role], writes)
    problems += await writes.end_quiet_run()
    if victim is not None:
        assert await exchange(victim, None) == [], "youth A heard something"
        await victim.disconnect()
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
    (consent, feedback …), a partner neither (no accept, note, consent …)."""
    w = await database_sync_to_async(build_world)(slim=True)
    insider = {"/ws/youth/": "youth", "/ws/staff/": "assigned_staff", "/ws/partner/": "partner"}
    who = WHO[insider[path]]
    ws = await connect(path, await _cookie(w, who))
    hello = {
        "/ws/youth/": {"type": "hello", "token": w.token_a},
        "/ws/staff/": {"type": "hello"},
        "/ws/partner/": {"type": "hello", "conversation_id": conv(w)},
    }[path]
    assert (await exchange(ws, hello))[0]["type"] == "welcome"
    before = await database_sync_to_async(db_snapshot)()
    got = {}
    for frame_type in sorted(foreign):
        got[frame_type] = errors(await exchange(ws, {"type": frame_type}))
    assert got == {t: ["unknown_type"] for t in foreign}
    assert changed_tables(before, await database_sync_to_async(db_snapshot)()) == []
    await ws.disconnect()
