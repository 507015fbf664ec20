"""Warm handover over real WebSockets: staff propose from the dashboard, the youth consents on
their socket, the partner joins the live chat (seeing it only from the moment they joined),
all three talk, and a withdrawal closes the partner's view at once."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from chat.models import Conversation
from tests.conftest import (
    PASSWORD,
    connect,
    drain,
    receive_until,
    session_cookie,
    staff_socket,
    youth_socket,
)
from youthhub.audit.models import AuditEvent
from youthhub.handover import services as handover_services
from youthhub.handover.models import Consultation, Handover

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_cleanup"),
]

SUMMARY = {
    "concern": "Sover dårlig og gruer seg til skolen",
    "own_words": "Jeg vil klare skolen igjen",
    "assessment": "Trenger en vurdering hos helsesykepleier",
    "interim_plan": "Chat med Ingrid til første møte",
    "who_does_what": "Ingrid følger opp til første møte",
}


@pytest.fixture
def partners(db):
    handover_services.service_directory_seed()
    return handover_services.partner_create_or_update(
        username="hfu", password=PASSWORD, service_slug="hfu-tonsberg", display_name="Kari"
    ).user


def conversation_row(conversation_id) -> dict:
    return Conversation.objects.filter(id=conversation_id).values().get()


async def chatting(team, make_youth):
    ingrid, _ = team
    _, token = await database_sync_to_async(make_youth)()
    youth, welcome = await youth_socket(token)
    assert welcome["handovers"] == []
    staff, staff_welcome = await staff_socket(await database_sync_to_async(session_cookie)(ingrid))
    assert any(s["slug"] == "hfu-tonsberg" for s in staff_welcome["services"])
    await youth.send_json_to({"type": "request", "target": {"staff": ingrid.id}})
    queued = await receive_until(youth, "queued")
    await staff.send_json_to({"type": "accept", "conversation_id": queued["conversation_id"]})
    await receive_until(youth, "assigned")
    await receive_until(staff, "staff_context")
    youth.token = token  # for a reconnect
    return youth, staff, queued["conversation_id"]


async def propose(staff, conversation_id, reach="warm"):
    await staff.send_json_to(
        {
            "type": "handover_propose",
            "conversation_id": conversation_id,
            "service": "hfu-tonsberg",
            "reach": reach,
            "summary": SUMMARY,
        }
    )
    return (await receive_until(staff, "handover.update"))["handover"]


async def test_propose_consent_join_talk_and_withdraw(team, make_youth, partners):
    youth, staff, conversation_id = await chatting(team, make_youth)
    await youth.send_json_to({"type": "message", "client_id": "before", "text": "Før los"})
    await receive_until(staff, "message")
    card = await propose(staff, conversation_id)
    assert card["state"] == "proposed" and card["service"]["slug"] == "hfu-tonsberg"
    request = await receive_until(youth, "consent.request")
    view = request["handover"]
    assert [s["key"] for s in view["sections"]][:2] == ["concern", "own_words"]
    version = view["ask"]["text_version"]
    # A stale wording is refused (the youth must have seen what they agree to).
    await youth.send_json_to(
        {
            "type": "consent",
            "handover_id": view["id"],
            "service": view["service"]["id"],
            "answer": "agree",
            "text_version": "0" * 16,
            "age_band": "16_plus",
        }
    )
    assert (await receive_until(youth, "error"))["code"] == "stale"
    # Consent to another service than the one proposed changes nothing.
    await youth.send_json_to(
        {
            "type": "consent",
            "handover_id": view["id"],
            "service": "bup-vestfold",
            "answer": "agree",
            "text_version": version,
            "age_band": "16_plus",
        }
    )
    assert (await receive_until(youth, "error"))["code"] == "wrong_service"
    state = await database_sync_to_async(lambda: Handover.objects.get().state)()
    assert state == "proposed"
    await youth.send_json_to(
        {
            "type": "consent",
            "handover_id": view["id"],
            "service": view["service"]["id"],
            "answer": "agree",
            "text_version": version,
            "age_band": "16_plus",
        }
    )
    result = await receive_until(youth, "consent.result")
    assert result["handover"]["state"] == "sent"

    # The partner joins the live chat: youth and staff are told; the partner sees nothing
    # from before they joined.
    partner = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await partner.send_json_to({"type": "hello", "conversation_id": conversation_id})
    welcome = await receive_until(partner, "welcome")
    assert welcome["partner"]["service"] == "Helsestasjon for ungdom Tønsberg"
    joined = await receive_until(youth, "joined")
    assert joined["name"] == "Kari, Helsestasjon for ungdom Tønsberg"
    await receive_until(staff, "joined")
    early = await drain(partner, quiet=0.3)
    assert not any(f.get("text") == "Før los" for f in early), early
    await partner.send_json_to({"type": "message", "client_id": "p1", "text": "Hei, jeg er Kari"})
    for ws in (youth, staff, partner):
        message = await receive_until(ws, "message")
        assert (message["sender"], message["text"]) == ("partner", "Hei, jeg er Kari")
    await youth.send_json_to({"type": "message", "client_id": "y2", "text": "Hei Kari"})
    assert (await receive_until(partner, "message"))["text"] == "Hei Kari"
    # While Ingrid leads the chat, the partner cannot end it, and nothing changes.
    before = await database_sync_to_async(conversation_row)(conversation_id)
    await partner.send_json_to({"type": "end"})
    assert (await receive_until(partner, "error"))["code"] == "not_allowed"
    assert await database_sync_to_async(conversation_row)(conversation_id) == before
    assert before["state"] == "active"
    assert not any(f["type"] == "ended" for f in await drain(youth, quiet=0.3))

    # The youth withdraws: the partner's view closes at once, and a new join is refused.
    await youth.send_json_to({"type": "consent_withdraw", "handover_id": view["id"]})
    update = await receive_until(youth, "handover.update")
    assert update["handover"]["state"] == "withdrawn"
    closed = await receive_until(partner, "closed")
    assert closed["reason"] == "consent"
    again = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await again.send_json_to({"type": "hello", "conversation_id": conversation_id})
    assert (await receive_until(again, "error"))["code"] == "not_allowed"
    actions = await database_sync_to_async(
        lambda: list(AuditEvent.objects.values_list("action", flat=True))
    )()
    for step in ("handover.draft", "handover.propose", "consent.answer", "handover.send",
                 "handover.join", "consent.withdraw"):  # fmt: skip
        assert step in actions, step
    for ws in (youth, staff, again):
        await ws.disconnect()


async def consented(youth, staff, conversation_id) -> dict:
    """Ingrid proposes a warm handover to HFU and the youth says yes: the youth's view."""
    await propose(staff, conversation_id)
    view = (await receive_until(youth, "consent.request"))["handover"]
    await youth.send_json_to(
        {
            "type": "consent",
            "handover_id": view["id"],
            "service": view["service"]["id"],
            "answer": "agree",
            "text_version": view["ask"]["text_version"],
            "age_band": "16_plus",
        }
    )
    await receive_until(youth, "consent.result")
    return view


async def test_staff_pass_the_chat_and_the_partner_continues_and_ends_it(
    team, make_youth, partners
):
    """Three sockets: after the pass Ingrid's lets go, the youth and Kari keep chatting (with
    typing and read receipts), Kari ends it and the youth sees it ended."""
    from youthhub.stats.models import Count

    youth, staff, conversation_id = await chatting(team, make_youth)
    view = await consented(youth, staff, conversation_id)
    partner = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await partner.send_json_to({"type": "hello", "conversation_id": conversation_id})
    assert (await receive_until(partner, "welcome"))["conversation"]["partner"] is None
    # Ingrid hears Kari joined, and her card says so (so she may pass the chat to Kari).
    joined, card = None, None
    while not (joined and card):
        frame = await staff.receive_json_from(timeout=5)
        if frame["type"] == "joined":
            joined = frame
        elif frame["type"] == "handover.update" and frame["handover"]["chat"]["joined"]:
            card = frame["handover"]
    assert card["chat"] == {"joined": True, "partner": "Kari", "passed_at": None}
    await staff.send_json_to({"type": "handover_pass", "handover_id": view["id"]})
    passed = await receive_until(staff, "passed")
    assert passed["from"] == "Ingrid" and passed["conversation_id"] == conversation_id
    for ws in (youth, partner):
        told = await receive_until(ws, "passed")
        assert (told["partner"]["name"], told["partner"]["service"]) == (
            "Kari",
            "Helsestasjon for ungdom Tønsberg",
        )
        assert told["conversation"]["staff"] is None and told["conversation"]["state"] == "active"
    # Ingrid's socket let go of it: once told, nothing more of the chat reaches it.
    await staff.send_json_to(
        {"type": "message", "conversation_id": conversation_id, "client_id": "s9", "text": "Hei"}
    )
    assert (await receive_until(staff, "error"))["code"] == "not_allowed"
    await partner.send_json_to({"type": "message", "client_id": "p1", "text": "Kari her"})
    assert (await receive_until(partner, "message"))["text"] == "Kari her"  # the echo
    assert (await receive_until(youth, "message"))["text"] == "Kari her"
    await youth.send_json_to({"type": "message", "client_id": "y1", "text": "Hei Kari"})
    seen = await receive_until(partner, "message")
    assert seen["text"] == "Hei Kari"
    # A reload or a lost network on either side after the pass: both say hello again, are told
    # who leads the chat now, and go on.
    token = youth.token
    await youth.disconnect()
    youth, welcome = await youth_socket(
        token, conversation_id=conversation_id, last_seq=seen["seq"]
    )
    assert welcome["conversation"]["staff"] is None
    assert welcome["conversation"]["partner"]["name"] == "Kari"
    await partner.disconnect()
    partner = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await partner.send_json_to(
        {"type": "hello", "conversation_id": conversation_id, "last_seq": seen["seq"]}
    )
    assert (await receive_until(partner, "welcome"))["conversation"]["partner"]["name"] == "Kari"
    await partner.send_json_to({"type": "typing", "active": True})
    assert (await receive_until(youth, "typing"))["who"] == "partner"
    await partner.send_json_to({"type": "read", "seq": seen["seq"]})
    read = await receive_until(youth, "read")
    assert (read["reader"], read["seq"]) == ("partner", seen["seq"])
    await partner.send_json_to({"type": "end"})
    assert (await receive_until(partner, "ended"))["by"] == "partner"
    ended = await receive_until(youth, "ended")
    assert (ended["state"], ended["by"]) == ("ended", "partner")
    after = await drain(staff, quiet=0.5)
    leaked = [f["type"] for f in after if f["type"] in ("message", "typing", "read", "passed")]
    assert leaked == [] and not any(f.get("text") == "Kari her" for f in after), after
    row = await database_sync_to_async(conversation_row)(conversation_id)
    assert (row["state"], row["assigned_staff_id"]) == ("ended", None)
    contacts = await database_sync_to_async(
        lambda: list(Count.objects.filter(metric="contacts").values_list("value", flat=True))
    )()
    assert contacts == [1]
    actions = await database_sync_to_async(
        lambda: list(AuditEvent.objects.values_list("action", flat=True))
    )()
    assert "handover.chat_pass" in actions and "handover.chat_end" in actions
    # After a reconnect Ingrid's dashboard no longer lists it.
    again, welcome = await staff_socket(await database_sync_to_async(session_cookie)(team[0]))
    assert [c["id"] for c in welcome["conversations"]] == []
    for ws in (youth, staff, partner, again):
        await ws.disconnect()


async def test_withdrawing_closes_the_partners_chat_and_then_ends_it(team, make_youth, partners):
    youth, staff, conversation_id = await chatting(team, make_youth)
    view = await consented(youth, staff, conversation_id)
    partner = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await partner.send_json_to({"type": "hello", "conversation_id": conversation_id})
    await receive_until(partner, "welcome")
    await staff.send_json_to({"type": "handover_pass", "handover_id": view["id"]})
    await receive_until(partner, "passed")
    await youth.send_json_to({"type": "consent_withdraw", "handover_id": view["id"]})
    assert (await receive_until(partner, "closed"))["reason"] == "consent"
    ended = await receive_until(youth, "ended")
    assert (ended["state"], ended["by"]) == ("ended", "youth")
    row = await database_sync_to_async(conversation_row)(conversation_id)
    assert row["state"] == "ended"
    for ws in (youth, staff, partner):
        await ws.disconnect()


async def test_the_partners_chat_closes_saying_why(team, make_youth, partners):
    """An accepted handover whose consent runs out keeps its state `accepted`: the partner is
    still told `expired`, not a bare `closed`. Passed to another service, the chat closes for
    the first with `passed_to_another_service`."""
    from django.utils import timezone

    from youthhub.handover.models import Consent

    youth, staff, conversation_id = await chatting(team, make_youth)
    view = await consented(youth, staff, conversation_id)
    await database_sync_to_async(handover_services.handover_accept)(
        user=partners, handover_id=view["id"], first_meeting_at=timezone.now() + timedelta(days=3)
    )
    partner = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await partner.send_json_to({"type": "hello", "conversation_id": conversation_id})
    await receive_until(partner, "welcome")
    await database_sync_to_async(
        lambda: Consent.objects.filter(handover__id=view["id"]).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    )()
    await database_sync_to_async(handover_services.handover_tick)()
    assert (await receive_until(partner, "closed"))["reason"] == "expired"
    state = await database_sync_to_async(
        lambda: Handover.objects.values_list("state", flat=True).get(id=view["id"])
    )()
    assert state == "accepted"
    for ws in (youth, staff, partner):
        await ws.disconnect()


async def test_a_chat_passed_to_another_service_closes_for_this_one(team, make_youth, partners):
    from tests.test_handover import sent

    youth, staff, conversation_id = await chatting(team, make_youth)
    await consented(youth, staff, conversation_id)
    bup = await database_sync_to_async(handover_services.partner_create_or_update)(
        username="bup", password=PASSWORD, service_slug="bup-vestfold", display_name="Ola"
    )
    conversation = await database_sync_to_async(Conversation.objects.get)(id=conversation_id)
    other = await database_sync_to_async(sent)(team[0], conversation, reach="warm")
    kari = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await kari.send_json_to({"type": "hello", "conversation_id": conversation_id})
    await receive_until(kari, "welcome")
    ola = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(bup.user))
    await ola.send_json_to({"type": "hello", "conversation_id": conversation_id})
    await receive_until(ola, "welcome")
    await staff.send_json_to({"type": "handover_pass", "handover_id": str(other.id)})
    assert (await receive_until(kari, "closed"))["reason"] == "passed_to_another_service"
    assert (await receive_until(ola, "passed"))["partner"]["name"] == "Ola"
    for ws in (youth, staff, kari, ola):
        await ws.disconnect()


async def test_a_partner_socket_without_a_valid_handover_is_refused(team, make_youth, partners):
    youth, staff, conversation_id = await chatting(team, make_youth)
    await propose(staff, conversation_id)  # proposed, not consented
    partner = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await partner.send_json_to({"type": "hello", "conversation_id": conversation_id})
    assert (await receive_until(partner, "error"))["code"] == "not_allowed"
    await partner.send_json_to({"type": "message", "client_id": "x", "text": "hei"})
    assert (await receive_until(partner, "error"))["code"] == "hello_required"
    # Staff cannot use the partner socket, partners cannot use the staff one.
    ingrid, _ = team
    staff_on_partner = await connect(
        "/ws/partner/", await database_sync_to_async(session_cookie)(ingrid)
    )
    assert (await receive_until(staff_on_partner, "error"))["code"] == "unauthorized"
    partner_on_staff = await connect(
        "/ws/staff/", await database_sync_to_async(session_cookie)(partners)
    )
    assert (await receive_until(partner_on_staff, "error"))["code"] == "unauthorized"
    for ws in (youth, staff, partner):
        await ws.disconnect()


@pytest.mark.parametrize(
    "frame, code",
    [
        (
            {
                "type": "handover_propose",
                "conversation_id": "x",
                "service": "bup-vestfold",
                "reach": "pigeon",
                "summary": {},
            },
            "bad_frame",
        ),  # fmt: skip
        (
            {
                "type": "handover_propose",
                "conversation_id": "x",
                "service": "bup-vestfold",
                "reach": "warm",
                "summary": {},
            },
            "not_found",
        ),  # fmt: skip
        ({"type": "handover_close", "handover_id": "nope"}, "not_found"),
        (
            {"type": "handover_revise", "handover_id": "nope", "reach": "warm", "summary": SUMMARY},
            "not_found",
        ),
        (
            {"type": "handover_revise", "handover_id": "x", "reach": "warm", "summary": "all"},
            "bad_frame",
        ),
        ({"type": "consultation_ask", "service": "hfu-tonsberg", "question": " "}, "empty"),
        ({"type": "consultation_ask", "service": "nowhere", "question": "?"}, "bad_service"),
    ],
)
async def test_bad_handover_frames_change_nothing(team, frame, code, partners):
    ingrid, _ = team
    staff, _ = await staff_socket(await database_sync_to_async(session_cookie)(ingrid))
    await staff.send_json_to(frame)
    assert (await receive_until(staff, "error"))["code"] == code
    assert await database_sync_to_async(Handover.objects.count)() == 0
    assert await database_sync_to_async(Consultation.objects.count)() == 0
    assert not await database_sync_to_async(
        AuditEvent.objects.filter(action__startswith="consultation.").exists
    )()
    await staff.disconnect()


async def test_staff_ask_a_service_anonymously_and_read_the_answer(team, partners):
    ingrid, _ = team
    staff, welcome = await staff_socket(await database_sync_to_async(session_cookie)(ingrid))
    assert welcome["consultations"] == []
    await staff.send_json_to(
        {"type": "consultation_ask", "service": "hfu-tonsberg", "question": "Hva gjør vi når …?"}
    )
    sent = await receive_until(staff, "consultation.sent")

    def answer():
        handover_services.consultation_answer(
            user=partners, consultation_id=sent["consultation_id"], answer="Ring oss gjerne."
        )

    await database_sync_to_async(answer)()
    update = await receive_until(staff, "consultation.update")
    while not update["consultation"]["answered"]:  # the first one was about the question
        update = await receive_until(staff, "consultation.update")
    assert "answer" not in update["consultation"]  # metadata only: the text is read on request
    await staff.send_json_to({"type": "consultations"})
    items = (await receive_until(staff, "consultations"))["items"]
    assert [(c["question"], c["answer"]) for c in items] == [
        ("Hva gjør vi når …?", "Ring oss gjerne.")
    ]
    await staff.disconnect()


async def card_in(staff, state: str) -> dict:
    """The next staff card of the handover in `state` (the reply and the group's frame both
    come; earlier states may still be on their way)."""
    card = (await receive_until(staff, "handover.update"))["handover"]
    while card["state"] != state:
        card = (await receive_until(staff, "handover.update"))["handover"]
    return card


def answer(view, answer, **fields) -> dict:
    return {
        "type": "consent",
        "handover_id": view["id"],
        "service": view["service"]["id"],
        "answer": answer,
        "text_version": view["ask"]["text_version"],
        **fields,
    }


async def test_change_revise_and_yes_with_the_reason_and_guidance_on_the_staff_card(
    team, make_youth, partners
):
    youth, staff, conversation_id = await chatting(team, make_youth)
    await propose(staff, conversation_id, reach="contact")
    view = (await receive_until(youth, "consent.request"))["handover"]
    # The page sends no contact details with a change (the server would refuse them).
    await youth.send_json_to(answer(view, "change", reason="Ikke skriv om søvnen", contact="x"))
    assert (await receive_until(youth, "error"))["code"] == "bad_contact"
    await youth.send_json_to(answer(view, "change", reason="Ikke skriv om søvnen"))
    assert (await receive_until(youth, "consent.result"))["handover"]["state"] == (
        "changes_requested"
    )
    card = await card_in(staff, "changes_requested")
    assert card["youth_answer"]["answer"] == "change"
    assert card["youth_answer"]["reason"] == "Ikke skriv om søvnen"
    assert card["guidance"] == ["change"]
    # Proposing again to the same service is refused; revising asks again.
    await staff.send_json_to(
        {
            "type": "handover_propose",
            "conversation_id": conversation_id,
            "service": "hfu-tonsberg",
            "reach": "contact",
            "summary": SUMMARY,
        }
    )
    assert (await receive_until(staff, "error"))["code"] == "conflict"
    revised = {**SUMMARY, "concern": "Gruer seg til skolen"}
    await staff.send_json_to(
        {
            "type": "handover_revise",
            "handover_id": card["id"],
            "reach": "contact",
            "summary": revised,
        }
    )
    card = await card_in(staff, "proposed")
    assert card["guidance"] == []
    again = (await receive_until(youth, "consent.request"))["handover"]
    assert again["sections"][0]["text"] == "Gruer seg til skolen"
    assert again["ask"]["text_version"] != view["ask"]["text_version"]
    # The answer to the old text counts no more.
    await youth.send_json_to(answer(view, "agree", age_band="16_plus"))
    assert (await receive_until(youth, "error"))["code"] == "stale"
    state = await database_sync_to_async(lambda: Handover.objects.get().state)()
    assert state == "proposed"
    await youth.send_json_to(answer(again, "agree", age_band="under_16", contact="sms 4000 0000"))
    assert (await receive_until(youth, "consent.result"))["handover"]["state"] == "sent"
    card = await card_in(staff, "sent")
    assert card["guidance"] == ["under_16"] and card["youth_answer"]["answer"] == "agree"
    actions = await database_sync_to_async(
        lambda: list(AuditEvent.objects.values_list("action", flat=True))
    )()
    assert actions.count("handover.revise") == 1 and actions.count("handover.send") == 1
    for ws in (youth, staff):
        await ws.disconnect()


async def test_a_decline_reaches_the_sender_and_closes_the_partners_chat(
    team, make_youth, partners
):
    youth, staff, conversation_id = await chatting(team, make_youth)
    await propose(staff, conversation_id)
    view = (await receive_until(youth, "consent.request"))["handover"]
    await youth.send_json_to(answer(view, "agree", age_band="16_plus"))
    await receive_until(youth, "consent.result")
    partner = await connect("/ws/partner/", await database_sync_to_async(session_cookie)(partners))
    await partner.send_json_to({"type": "hello", "conversation_id": conversation_id})
    await receive_until(partner, "welcome")

    def decline():
        handover_services.handover_decline(
            user=partners,
            handover_id=view["id"],
            reason="Vi har ikke kapasitet nå",
            alternative="Skolehelsetjenesten har åpen dør hver dag",
            alternative_service="skolehelse-tonsberg",
        )

    await database_sync_to_async(decline)()
    closed = await receive_until(partner, "closed")
    assert closed["reason"] == "declined"
    card = await card_in(staff, "declined")
    assert card["decline"] == {
        "reason": "Vi har ikke kapasitet nå",
        "alternative": "Skolehelsetjenesten har åpen dør hver dag",
    }
    assert card["answer"]["alternative_service"]["slug"] == "skolehelse-tonsberg"
    # After a reconnect the welcome says the same.
    ingrid, _ = team
    again, welcome = await staff_socket(await database_sync_to_async(session_cookie)(ingrid))
    (listed,) = welcome["handovers"]
    assert listed["decline"] == card["decline"]
    for ws in (youth, staff, again):
        await ws.disconnect()


async def test_a_supervisor_finds_an_overdue_handover_in_the_welcome(
    team, make_youth, make_staff, partners
):
    youth, staff, conversation_id = await chatting(team, make_youth)
    await propose(staff, conversation_id)
    view = (await receive_until(youth, "consent.request"))["handover"]
    await youth.send_json_to(answer(view, "agree", age_band="16_plus"))
    await receive_until(youth, "consent.result")
    mona = await database_sync_to_async(make_staff)("mona", "social_worker", is_supervisor=True)
    cookie = await database_sync_to_async(session_cookie)(mona)
    supervisor, welcome = await staff_socket(cookie)
    assert welcome["handovers"] == []
    await supervisor.disconnect()

    def overdue():
        handover = Handover.objects.get()
        Handover.objects.filter(id=handover.id).update(
            reply_expected_by=handover.sent_at - timedelta(days=1)
        )
        handover_services.handover_tick()

    await database_sync_to_async(overdue)()
    supervisor, welcome = await staff_socket(cookie)  # a reconnect after the live frame
    (card,) = welcome["handovers"]
    assert card["id"] == view["id"] and card["overdue"] and card["overdue_flagged_at"]
    for ws in (youth, staff, supervisor):
        await ws.disconnect()


async def test_a_youth_page_in_english_gets_the_question_in_english_and_can_answer(
    team, make_youth, partners
):
    ingrid, _ = team
    _, token = await database_sync_to_async(make_youth)()
    youth = await connect("/ws/youth/", f"{settings.LANGUAGE_COOKIE_NAME}=en".encode())
    await youth.send_json_to({"type": "hello", "token": token})
    await receive_until(youth, "welcome")
    staff, _ = await staff_socket(await database_sync_to_async(session_cookie)(ingrid))
    await youth.send_json_to({"type": "request", "target": {"staff": ingrid.id}})
    queued = await receive_until(youth, "queued")
    await staff.send_json_to({"type": "accept", "conversation_id": queued["conversation_id"]})
    await receive_until(youth, "assigned")
    await propose(staff, queued["conversation_id"])
    view = (await receive_until(youth, "consent.request"))["handover"]
    assert view["sections"][0]["label"] == "The concern, in concrete words"
    assert "suggests sending this to" in view["status"]
    await youth.send_json_to(answer(view, "agree", age_band="16_plus"))
    assert (await receive_until(youth, "consent.result"))["handover"]["state"] == "sent"
    for ws in (youth, staff):
        await ws.disconnect()
