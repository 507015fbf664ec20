"""The partner pages (frontend/partner_views.py): the inbox, a handover's shared summary with
the answer forms, lookup by code, anonymous consultations and the warm handover chat page,
through the Django test client on real services (youthhub/handover, docs/handover.md)."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from chat.models import Conversation
from dropin import services as queue
from tests.conftest import PASSWORD
from tests.test_handover import asked
from youthhub.audit.models import AuditEvent
from youthhub.handover import selectors, services
from youthhub.handover.models import Consultation, Handover

pytestmark = pytest.mark.django_db

OSLO = ZoneInfo("Europe/Oslo")
SUMMARY = {
    "concern": "Sover dårlig og gruer seg til skolen hver morgen",
    "own_words": "Jeg vil klare å gå på skolen igjen",
    "tried": "Samtaler med helsesykepleier i høst",
    "assessment": "Trenger mer enn lavterskel; BUP-vurdering anbefales",
    "interim_plan": "Chat med Ingrid hver tirsdag til BUP svarer",
    "who_does_what": "Ingrid følger opp til første møte; ungdommen tar kontakt ved krise",
}


# -- setting the scene with the real services --------------------------------------------------


@pytest.fixture(autouse=True)
def directory(db):
    return {service.slug: service for service in services.service_directory_seed()}


def make_partner(username, slug, name):
    return services.partner_create_or_update(
        username=username, password=PASSWORD, service_slug=slug, display_name=name
    ).user


@pytest.fixture
def bup(directory):
    return make_partner("bup", "bup-vestfold", "Kari, BUP")


@pytest.fixture
def hfu(directory):
    return make_partner("hfu", "hfu-tonsberg", "Helsestasjonen")


def chatting(make_youth, staff) -> Conversation:
    youth, _token = make_youth()
    conversation = queue.queue_request(youth=youth, target={"staff": staff.id})
    return queue.queue_accept(user=staff, conversation_id=conversation.id)


def send_handover(staff, conversation, *, reach="contact", **answer):
    """Draft, propose and consent: a handover to BUP Vestfold in state `sent`.
    Returns (handover, the consent result: its `code` for reach=code)."""
    handover = services.handover_draft(
        user=staff,
        conversation_id=conversation.id,
        service="bup-vestfold",
        reach=reach,
        summary=SUMMARY,
    )
    handover = services.handover_propose(user=staff, handover_id=handover.id)
    answer.setdefault("answer", "agree")
    answer.setdefault("age_band", "16_plus")
    result = services.consent_answer(
        youth=handover.youth,
        handover_id=handover.id,
        service="bup-vestfold",
        text_version=asked(handover),
        **answer,
    )
    return Handover.objects.get(id=handover.id), result


def client_for(user=None, *, csrf=False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # assertions are on the msgids
    if user is not None:
        client.force_login(user)
    return client


def meeting_input(days=2, hour=14) -> tuple[str, datetime]:
    """A datetime-local value (Oslo time) and the instant it means."""
    day = timezone.localtime(timezone.now(), OSLO).date() + timedelta(days=days)
    local = datetime(day.year, day.month, day.day, hour, 0, tzinfo=OSLO)
    return local.strftime("%Y-%m-%dT%H:%M"), local


def state_of(handover) -> tuple:
    row = Handover.objects.get(id=handover.id)
    return (row.state, row.answered_at, row.first_meeting_at, row.decline_reason)


def partner_actions(handover) -> list[str]:
    return list(
        AuditEvent.objects.filter(detail__handover=str(handover.id))
        .exclude(action="handover.read")
        .values_list("action", flat=True)
    )


def url(name, *args) -> str:
    from django.urls import reverse

    return reverse(name, args=args)


def text(response) -> str:
    return response.content.decode()


# -- the inbox ---------------------------------------------------------------------------------


def test_the_inbox_lists_a_handover_only_for_partners_of_its_service(team, make_youth, bup, hfu):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover, _ = send_handover(ingrid, conversation)
    alias = conversation.youth.alias

    response = client_for(bup).get(url("partner-inbox"))
    assert response.status_code == 200
    page = text(response)
    assert "BUP Vestfold" in page and alias in page
    assert url("partner-handover", handover.id) in page
    assert "Consented and sent" in page and "Reply expected by" in page
    assert SUMMARY["concern"] not in page  # cards carry no content
    assert "no-store" in response["Cache-Control"]
    # A card is not a read of the summary.
    assert not AuditEvent.objects.filter(action="handover.read").exists()

    other = text(client_for(hfu).get(url("partner-inbox")))
    assert str(handover.id) not in other and alias not in other
    assert "No handovers to your service right now." in other

    assert client_for(ingrid).get(url("partner-inbox")).status_code == 403
    anonymous = client_for().get(url("partner-inbox"))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(settings.LOGIN_URL)


def test_an_overdue_handover_is_flagged_on_its_card(team, make_youth, bup):
    ingrid, _sara = team
    handover, _ = send_handover(ingrid, chatting(make_youth, ingrid))
    Handover.objects.filter(id=handover.id).update(
        reply_expected_by=timezone.now() - timedelta(hours=1)
    )
    page = text(client_for(bup).get(url("partner-inbox")))
    assert "Overdue: the reply is late." in page


# -- one handover ------------------------------------------------------------------------------


def test_the_handover_page_shows_what_was_shared_and_is_an_audited_read(team, make_youth, bup, hfu):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover, _ = send_handover(
        ingrid,
        conversation,
        answer="agree_except",
        exceptions=["tried", "family"],
        age_band="under_16",
        contact="snap: hemmelig_bruker",
    )
    response = client_for(bup).get(url("partner-handover", handover.id))
    assert response.status_code == 200
    page = text(response)
    for key in ("concern", "own_words", "assessment", "interim_plan", "who_does_what"):
        assert SUMMARY[key] in page  # word for word
    assert SUMMARY["tried"] not in page  # the youth left it out
    assert "Not shared: Family" in page
    assert "Under 16" in page and "parents or guardians" in page
    assert "hemmelig_bruker" not in page  # contact details only after this partner accepts
    assert "shown only to the partner who accepts" in page
    assert 'type="datetime-local"' in page and 'name="csrfmiddlewaretoken"' in page
    assert "no-store" in response["Cache-Control"]
    read = AuditEvent.objects.get(action="handover.read", detail__handover=str(handover.id))
    assert read.actor_kind == AuditEvent.ActorKind.PARTNER and read.actor_id == bup.id
    assert read.detail["via"] == "inbox"

    # Another service's partner: no such handover; staff: not a partner page at all.
    assert client_for(hfu).get(url("partner-handover", handover.id)).status_code == 404
    assert client_for(ingrid).get(url("partner-handover", handover.id)).status_code == 403
    assert AuditEvent.objects.filter(action="handover.read").count() == 1


def test_accepting_with_a_meeting_time_in_oslo_time_then_the_first_meeting(team, make_youth, bup):
    ingrid, _sara = team
    handover, _ = send_handover(
        ingrid, chatting(make_youth, ingrid), contact="snap: hemmelig_bruker"
    )
    client = client_for(bup)
    value, meant = meeting_input(days=2, hour=14)
    response = client.post(
        url("partner-accept", handover.id),
        {"first_meeting_at": value, "where": "BUP Tønsberg, 2. etg.", "who": "Kari"},
    )
    assert response.status_code == 303
    assert response["Location"] == url("partner-handover", handover.id)
    row = Handover.objects.get(id=handover.id)
    assert row.state == "accepted" and row.answered_by == bup
    assert row.first_meeting_at == meant and row.meeting_where == "BUP Tønsberg, 2. etg."
    assert "handover.accept" in partner_actions(handover)

    page = text(client.get(response["Location"]))
    assert "You accepted the handover." in page  # the confirmation, once
    assert "hemmelig_bruker" in page  # now the accepting partner sees how to reach the youth
    assert "First meeting held" in page and url("partner-met", handover.id) in page
    assert "You accepted the handover." not in text(client.get(response["Location"]))

    response = client.post(url("partner-met", handover.id))
    assert response.status_code == 303
    assert Handover.objects.get(id=handover.id).state == "met"


def test_a_bad_meeting_time_changes_nothing(team, make_youth, bup):
    ingrid, _sara = team
    handover, _ = send_handover(ingrid, chatting(make_youth, ingrid))
    before = state_of(handover)
    client = client_for(bup)
    for value in ("", "not a date", meeting_input(days=400)[0]):
        response = client.post(url("partner-accept", handover.id), {"first_meeting_at": value})
        assert response.status_code == 400
        assert state_of(handover) == before
    assert "The first meeting must be within the next year." in text(response)
    # A NUL character in a text field (PostgreSQL cannot store it) is refused as bad text.
    response = client.post(
        url("partner-accept", handover.id),
        {"first_meeting_at": meeting_input()[0], "where": "Rom\x002"},
    )
    assert response.status_code == 400 and state_of(handover) == before
    assert "handover.accept" not in partner_actions(handover)


def test_declining_needs_a_reason_and_an_alternative(team, make_youth, bup, directory):
    ingrid, _sara = team
    handover, _ = send_handover(ingrid, chatting(make_youth, ingrid))
    before = state_of(handover)
    client = client_for(bup)
    response = client.post(
        url("partner-decline", handover.id), {"reason": "Passer ikke for oss", "alternative": ""}
    )
    assert response.status_code == 400
    page = text(response)
    assert "An alternative offer is required." in page
    assert "Passer ikke for oss" in page  # what was typed is kept
    assert state_of(handover) == before
    assert "handover.decline" not in partner_actions(handover)

    response = client.post(
        url("partner-decline", handover.id),
        {
            "reason": "Passer ikke for oss",
            "alternative": "Helsestasjon for ungdom kan ta imot deg",
            "alternative_service": str(directory["hfu-tonsberg"].id),
        },
    )
    assert response.status_code == 303
    row = Handover.objects.get(id=handover.id)
    assert row.state == "declined" and row.alternative_service.slug == "hfu-tonsberg"
    # Back to the inbox (the handover is no longer this service's to read), with a confirmation.
    assert response["Location"] == url("partner-inbox")
    page = text(client.get(response["Location"]))
    assert "You declined the handover." in page and str(handover.id) not in page
    # Declined: no longer the partner's to read.
    assert client.get(url("partner-handover", handover.id)).status_code == 403


def test_answering_twice_is_refused_and_changes_nothing(team, make_youth, bup):
    ingrid, _sara = team
    handover, _ = send_handover(ingrid, chatting(make_youth, ingrid))
    client = client_for(bup)
    first, _ = meeting_input(days=2)
    assert (
        client.post(url("partner-accept", handover.id), {"first_meeting_at": first}).status_code
        == 303
    )
    before = state_of(handover)
    second, _ = meeting_input(days=3)
    response = client.post(url("partner-accept", handover.id), {"first_meeting_at": second})
    assert response.status_code == 400
    assert "This handover has already been answered." in text(response)
    response = client.post(
        url("partner-decline", handover.id), {"reason": "Nei", "alternative": "Noe annet"}
    )
    assert response.status_code == 400
    assert state_of(handover) == before
    assert partner_actions(handover).count("handover.accept") == 1


def test_posts_need_the_csrf_token(team, make_youth, bup):
    ingrid, _sara = team
    handover, _ = send_handover(ingrid, chatting(make_youth, ingrid))
    before = state_of(handover)
    response = client_for(bup, csrf=True).post(
        url("partner-accept", handover.id), {"first_meeting_at": meeting_input()[0]}
    )
    assert response.status_code == 403
    assert state_of(handover) == before


def test_pages_that_change_something_take_post_only(team, make_youth, bup):
    ingrid, _sara = team
    handover, _ = send_handover(ingrid, chatting(make_youth, ingrid))
    client = client_for(bup)
    for name in ("partner-accept", "partner-decline", "partner-met"):
        assert client.get(url(name, handover.id)).status_code == 405
    assert client.get(url("partner-code")).status_code == 405


# -- withdrawal and the warm handover chat -----------------------------------------------------


def test_a_warm_handover_offers_the_chat_until_the_youth_withdraws(team, make_youth, bup, hfu):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover, _ = send_handover(ingrid, conversation, reach="warm")
    client = client_for(bup)
    chat_url = url("partner-chat", conversation.id)

    page = text(client.get(url("partner-handover", handover.id)))
    assert chat_url in page and "Join the chat" in page
    response = client.get(chat_url)
    assert response.status_code == 200
    page = text(response)
    assert f'data-conversation="{conversation.id}"' in page
    assert 'id="strings"' in page and "youthhub/js/partner.js" in page
    assert "<script>" not in page  # no inline scripts: the strings are a JSON data block
    assert client_for(hfu).get(chat_url).status_code == 403
    assert client_for(ingrid).get(chat_url).status_code == 403
    # The open detail page asks whether it may still show the summary: yes, for now.
    status_url = url("partner-handover-status", handover.id)
    assert "youthhub/js/partnerhandover.js" in text(
        client.get(url("partner-handover", handover.id))
    )
    reads = AuditEvent.objects.filter(action="handover.read").count
    read_before = reads()  # asking for the status reads no content: nothing is added
    assert client.get(status_url).json() == {
        "id": str(handover.id),
        "state": "sent",
        "visible": True,
        "message": None,
    }
    assert client_for(hfu).get(status_url).status_code == 404  # another service's

    services.consent_withdraw(youth=conversation.youth, handover_id=handover.id)
    # The page, still open, is told to put the summary away, with the reason in words.
    status = client.get(status_url).json()
    assert status["visible"] is False and status["state"] == "withdrawn"
    assert status["message"] == "The youth has withdrawn their consent."
    assert reads() == read_before
    response = client.get(url("partner-handover", handover.id))
    assert response.status_code == 403
    page = text(response)
    assert "The youth has withdrawn their consent." in page
    assert SUMMARY["concern"] not in page
    assert client.get(chat_url).status_code == 403
    assert str(handover.id) not in text(client.get(url("partner-inbox")))
    before = state_of(handover)
    response = client.post(
        url("partner-accept", handover.id), {"first_meeting_at": meeting_input()[0]}
    )
    assert response.status_code == 403 and state_of(handover) == before


def test_a_contact_handover_has_no_chat_link(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover, _ = send_handover(ingrid, conversation, reach="contact")
    client = client_for(bup)
    page = text(client.get(url("partner-handover", handover.id)))
    assert "Join the chat" not in page
    assert client.get(url("partner-chat", conversation.id)).status_code == 403


# -- handover codes ----------------------------------------------------------------------------


def test_a_handover_code_shows_the_handover_and_a_wrong_code_an_error(team, make_youth, bup, hfu):
    ingrid, _sara = team
    handover, result = send_handover(ingrid, chatting(make_youth, ingrid), reach="code")
    code = result.code
    assert code

    client = client_for(bup)
    response = client.post(url("partner-code"), {"code": code.lower()})
    assert response.status_code == 200
    page = text(response)
    assert SUMMARY["concern"] in page and "Found with the handover code." in page
    assert url("partner-accept", handover.id) in page
    assert AuditEvent.objects.filter(
        action="handover.read", detail__handover=str(handover.id), detail__via="code"
    ).exists()

    wrong = code[:5] + ("2222" if code[5:] != "2222" else "3333")
    response = client.post(url("partner-code"), {"code": wrong})
    assert response.status_code == 400
    page = text(response)
    assert "That code does not match a handover to you." in page
    assert 'aria-invalid="true"' in page and SUMMARY["concern"] not in page
    # Another service's partner gets the same "no match".
    response = client_for(hfu).post(url("partner-code"), {"code": code})
    assert response.status_code == 400
    assert "That code does not match a handover to you." in text(response)


# -- anonymous consultations -------------------------------------------------------------------


def test_a_consultation_is_answered_once_from_the_inbox(team, bup, hfu):
    ingrid, _sara = team
    question = "En 15-åring med mye skolevegring: tar dere slike uten fastlege?"
    consultation = services.consultation_ask(user=ingrid, service="bup-vestfold", question=question)
    client = client_for(bup)
    page = text(client.get(url("partner-inbox")))
    assert question in page
    assert url("partner-consultation-answer", consultation.id) in page
    assert question not in text(client_for(hfu).get(url("partner-inbox")))

    answer_url = url("partner-consultation-answer", consultation.id)
    response = client.post(answer_url, {"answer": ""})
    assert response.status_code == 400 and "The answer is required." in text(response)
    assert Consultation.objects.get(id=consultation.id).answered_at is None

    response = client.post(answer_url, {"answer": "Ja, via fastlege eller helsesykepleier."})
    assert response.status_code == 303
    page = text(client.get(response["Location"]))
    assert "Ja, via fastlege eller helsesykepleier." in page and "Answered by Kari, BUP" in page
    answered_at = Consultation.objects.get(id=consultation.id).answered_at
    assert answered_at is not None

    response = client.post(answer_url, {"answer": "Et annet svar"})
    assert response.status_code == 400
    assert "This question has already been answered." in text(response)
    view = selectors.consultations_for_partner(bup)[0]
    assert view["answer"] == "Ja, via fastlege eller helsesykepleier."
    assert Consultation.objects.get(id=consultation.id).answered_at == answered_at
    # Another service's partner cannot answer it.
    response = client_for(hfu).post(answer_url, {"answer": "Hei"})
    assert response.status_code == 400 and "There is no such question." in text(response)


# -- logging in --------------------------------------------------------------------------------


def test_a_partner_logging_in_at_the_staff_login_lands_on_the_partner_inbox(team, bup):
    client = client_for()
    response = client.post(
        url("staff-login"),
        {"username": "bup", "password": PASSWORD, "next": "/staff/"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == url("partner-inbox")
    assert response.status_code == 200 and "BUP Vestfold" in text(response)
    # Staff still land on their dashboard.
    staff = client_for()
    response = staff.post(
        url("staff-login"),
        {"username": "ingrid", "password": PASSWORD, "next": "/staff/"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == url("staff") and response.status_code == 200


def test_every_input_on_the_partner_pages_has_a_label(team, make_youth, bup):
    ingrid, _sara = team
    handover, _ = send_handover(ingrid, chatting(make_youth, ingrid))
    services.consultation_ask(user=ingrid, service="bup-vestfold", question="Et spørsmål")
    client = client_for(bup)
    for page in (
        text(client.get(url("partner-inbox"))),
        text(client.get(url("partner-handover", handover.id))),
    ):
        labelled = set(re.findall(r'<label for="([^"]+)"', page))
        fields = re.findall(r"<(?:input|textarea|select)\b([^>]*)>", page)
        for attrs in fields:
            if 'type="hidden"' in attrs:
                continue
            field_id = re.search(r'id="([^"]+)"', attrs)
            assert field_id and field_id.group(1) in labelled, attrs
        levels = [int(n) for n in re.findall(r"<h([1-6])\b", page)]
        assert levels[0] == 1
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels


# -- in Chromium: the warm handover chat and accessibility ------------------------------------


def off_the_loop(fn, **kwargs):
    """Run a service call in a thread of its own: Playwright's sync API keeps an event loop
    running in this one, and publishing frames (async_to_sync) cannot run inside it."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def call():
        try:
            return fn(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=30)


@pytest.fixture
def warm_chat(team, make_youth, bup):
    """A youth chatting with Ingrid and a warm handover to BUP they said yes to (made before
    Chromium starts: ORM and frames first)."""
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover, _ = send_handover(ingrid, conversation, reach="warm")
    services.consultation_ask(
        user=ingrid, service="bup-vestfold", question="Tar dere imot 15-åringer uten henvisning?"
    )
    return conversation, handover


@pytest.mark.services
@pytest.mark.browser
@pytest.mark.skipif(
    settings.TEST_BACKEND != "services", reason="a browser test: Daphne on PostgreSQL and Redis"
)
@pytest.mark.django_db(transaction=True)
def test_a_partner_joins_the_warm_chat_and_is_shut_out_when_the_youth_withdraws(
    daphne_server, warm_chat, browser
):
    from playwright.sync_api import expect

    from chat import services as chat_services
    from chat.actors import Actor
    from tests.browser import screenshot
    from tests.test_a11y import assert_accessible

    conversation, handover = warm_chat
    url = daphne_server["url"]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": "en", "url": url}])
    page = context.new_page()
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(url + "/staff/login/")
    page.fill("#id_username", "bup")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    expect(page).to_have_url(url + "/partner/")
    assert_accessible(page, "partner inbox")
    screenshot(page, "partner-inbox-desktop.png")

    page.click(f"a[href='/partner/h/{handover.id}/']")
    expect(page.locator("#shared-title")).to_be_visible()
    expect(page.get_by_text(SUMMARY["concern"])).to_be_visible()
    assert_accessible(page, "partner handover")
    screenshot(page, "partner-handover-desktop.png")

    page.click("text=Join the chat")
    expect(page.locator("#status")).to_have_text("Online")
    assert_accessible(page, "partner chat")

    off_the_loop(
        chat_services.message_send,
        actor=Actor.for_youth(conversation.youth),
        conversation_id=conversation.id,
        client_id="youth-1",
        text="Hei, er du fra BUP?",
    )
    expect(page.locator("#messages")).to_contain_text("Hei, er du fra BUP?")
    page.fill("#text", "Ja, jeg heter Kari.")
    page.press("#text", "Enter")
    expect(page.locator("#messages li.mine[data-seq]")).to_contain_text("Ja, jeg heter Kari.")
    screenshot(page, "partner-chat-desktop.png")

    opened = len(sockets)
    off_the_loop(services.consent_withdraw, youth=conversation.youth, handover_id=handover.id)
    expect(page.locator("#closed-text")).to_have_text(
        "The youth has withdrawn consent. This conversation is closed for you."
    )
    expect(page.locator("#chat")).to_be_hidden()
    assert page.locator("#messages li").count() == 0  # nothing of the chat stays on screen
    page.wait_for_timeout(2500)  # the reconnect delay is 0.5–1 s: none must come
    assert len(sockets) == opened
    assert_accessible(page, "partner chat closed")
    screenshot(page, "partner-chat-closed-desktop.png")
