"""Staff work on the database: internal notes, transfers, ending with tags, feedback,
continuity with a primary contact, capacity, my shift, canned replies, the audit log."""

import pytest
from django.db import connection, transaction

from chat import selectors as chat_selectors
from chat import services as chat
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import Conversation, Feedback, Note, Transfer
from dropin import selectors, services
from tests.conftest import put_on_duty
from youthhub.audit.models import AppendOnly, AuditEvent
from youthhub.staff.models import CannedReply
from youthhub.staff.selectors import canned_replies_for

pytestmark = pytest.mark.django_db


def error_code(fn, **kwargs) -> str:
    with pytest.raises(ServiceError) as exc:
        fn(**kwargs)
    return exc.value.code


def chatting(make_youth, staff, youth=None) -> Conversation:
    """A youth asking for `staff` by name, taken by them."""
    if youth is None:
        youth, _ = make_youth()
    conversation = services.queue_request(youth=youth, target={"staff": staff.id})
    return services.queue_accept(user=staff, conversation_id=conversation.id)


def say(actor_or_youth, conversation, text):
    actor = actor_or_youth
    if not isinstance(actor, Actor):
        actor = Actor.for_youth(actor) if hasattr(actor, "token_hash") else Actor.for_staff(actor)
    frame, _ = chat.message_send(
        actor=actor, conversation_id=conversation.id, client_id=f"c{text[:20]}", text=text
    )
    return frame


def actions(conversation) -> list[str]:
    return [e.action for e in AuditEvent.objects.filter(conversation_id=conversation.id)]


# -- internal notes ---------------------------------------------------------------------------


def test_a_note_is_staff_only_encrypted_and_idempotent(team, make_youth):
    ingrid, sara = team
    conversation = chatting(make_youth, ingrid)
    staff = Actor.for_staff(ingrid)
    frame, created = chat.note_add(
        actor=staff, conversation_id=conversation.id, client_id="n1", text="Mentions exam stress"
    )
    assert created and frame["type"] == "note" and frame["text"] == "Mentions exam stress"
    again, created = chat.note_add(
        actor=staff, conversation_id=conversation.id, client_id="n1", text="Mentions exam stress"
    )
    assert not created and again["id"] == frame["id"]
    note = Note.objects.get()
    assert b"exam" not in bytes(note.body)  # ciphertext only
    assert chat_selectors.notes(conversation)[0]["text"] == "Mentions exam stress"
    # The youth cannot write one, and a colleague outside the conversation cannot either.
    youth = Actor.for_youth(conversation.youth)
    assert (
        error_code(
            chat.note_add, actor=youth, conversation_id=conversation.id, client_id="x", text="x"
        )
        == "not_allowed"
    )
    sara_actor = Actor.for_staff(sara)
    assert (
        error_code(
            chat.note_add,
            actor=sara_actor,
            conversation_id=conversation.id,
            client_id="y",
            text="y",
        )
        == "not_allowed"
    )
    assert (
        error_code(
            chat.note_add, actor=staff, conversation_id=conversation.id, client_id="z", text="  "
        )
        == "empty"
    )
    assert Note.objects.count() == 1
    assert actions(conversation).count("note.add") == 1
    # Retention: deleting the data key makes the note unreadable too.
    chat.conversation_destroy_content(conversation=conversation)
    assert chat_selectors.notes(conversation)[0]["text"] is None


# -- transfers --------------------------------------------------------------------------------


def test_a_transfer_to_a_named_colleague_keeps_the_sender_until_accepted(team, make_youth):
    ingrid, sara = team
    conversation = chatting(make_youth, ingrid)
    say(conversation.youth, conversation, "I can't sleep before exams")
    transfer = services.transfer_offer(
        user=ingrid,
        conversation_id=conversation.id,
        target={"staff": sara.id},
        note="Exam stress, wants sleep advice; nurse is better placed.",
    )
    assert transfer.state == "pending" and transfer.to_staff == sara
    # Until Sara accepts, Ingrid is still the one chatting: the youth is never alone.
    conversation.refresh_from_db()
    assert conversation.assigned_staff == ingrid
    say(ingrid, conversation, "I'm asking a colleague to join")
    # A second transfer while one is pending is refused.
    assert (
        error_code(
            services.transfer_offer,
            user=ingrid,
            conversation_id=conversation.id,
            target={"role": "peer"},
            note="x",
        )
        == "conflict"
    )
    # Sara reads the note and the whole history before accepting (an audited read).
    preview = services.transfer_preview(user=sara, transfer_id=transfer.id)
    assert [m["text"] for m in preview["messages"]] == [
        "I can't sleep before exams",
        "I'm asking a colleague to join",
    ]
    assert preview["notes"][0]["kind"] == "transfer"
    assert preview["notes"][0]["text"].startswith("Exam stress")
    assert "note" not in preview["transfer"]  # the card itself never carries the text
    moved = services.transfer_accept(user=sara, transfer_id=transfer.id)
    assert moved.assigned_staff == sara and moved.state == "active"
    transfer.refresh_from_db()
    assert transfer.state == "accepted" and transfer.decided_by == sara
    # Ingrid has let go; Sara writes on.
    assert error_code(say, actor_or_youth=ingrid, conversation=moved, text="still here?") == (
        "not_allowed"
    )
    say(sara, moved, "Hi, I'm Sara")
    assert actions(conversation) == [
        "transfer.offer",
        "transcript.read",
        "transfer.accepted",
    ]
    read = AuditEvent.objects.get(action="transcript.read")
    assert read.actor == sara and read.detail["reason"] == "transfer"
    # Answering twice is a clear error and changes nothing.
    assert error_code(services.transfer_accept, user=sara, transfer_id=transfer.id) == "conflict"


def test_who_may_receive_decline_or_withdraw_a_transfer(team, make_youth, make_staff, arena):
    ingrid, sara = team
    peer = put_on_duty(make_staff("jonas", "peer"), arena)
    elsewhere = make_staff("kari", "peer")  # serves no queue of this youth
    conversation = chatting(make_youth, ingrid)
    to_role = services.transfer_offer(
        user=ingrid, conversation_id=conversation.id, target={"role": "peer"}, note="Wants a peer"
    )
    # A role transfer is for anyone of that role serving the queue: not Sara, not Kari.
    assert error_code(services.transfer_preview, user=sara, transfer_id=to_role.id) == "not_allowed"
    assert error_code(services.transfer_accept, user=elsewhere, transfer_id=to_role.id) == (
        "not_allowed"
    )
    # Only a named colleague declines; only the sender withdraws.
    assert error_code(services.transfer_decline, user=peer, transfer_id=to_role.id) == "not_allowed"
    assert error_code(services.transfer_cancel, user=peer, transfer_id=to_role.id) == "not_allowed"
    services.transfer_cancel(user=ingrid, transfer_id=to_role.id)
    assert error_code(services.transfer_accept, user=peer, transfer_id=to_role.id) == "conflict"
    named = services.transfer_offer(
        user=ingrid, conversation_id=conversation.id, target={"staff": sara.id}, note="Over to you"
    )
    services.transfer_decline(user=sara, transfer_id=named.id)
    named.refresh_from_db()
    assert named.state == "declined"
    conversation.refresh_from_db()
    assert conversation.assigned_staff == ingrid
    # Bad targets: nobody, oneself, someone outside the queue, someone off duty, no note.
    for target, code in [
        ("any", "bad_target"),
        ({"staff": ingrid.id}, "bad_target"),
        ({"staff": elsewhere.id}, "bad_target"),
        ({"role": "wizard"}, "bad_target"),
        ({"staff": 10**6}, "bad_target"),
    ]:
        assert (
            error_code(
                services.transfer_offer,
                user=ingrid,
                conversation_id=conversation.id,
                target=target,
                note="n",
            )
            == code
        ), target
    peer.staff_profile.status = "away"
    peer.staff_profile.save()
    assert (
        error_code(
            services.transfer_offer,
            user=ingrid,
            conversation_id=conversation.id,
            target={"staff": peer.id},
            note="n",
        )
        == "not_on_duty"
    )
    assert (
        error_code(
            services.transfer_offer,
            user=ingrid,
            conversation_id=conversation.id,
            target={"staff": sara.id},
            note=" ",
        )
        == "note_required"
    )
    assert Transfer.objects.filter(state="pending").count() == 0


def test_a_transfer_respects_the_receivers_capacity_and_ends_with_the_conversation(
    team, make_youth
):
    ingrid, sara = team
    sara.staff_profile.capacity = 1
    sara.staff_profile.save()
    chatting(make_youth, sara)  # Sara is full
    conversation = chatting(make_youth, ingrid)
    transfer = services.transfer_offer(
        user=ingrid, conversation_id=conversation.id, target={"staff": sara.id}, note="n"
    )
    assert error_code(services.transfer_accept, user=sara, transfer_id=transfer.id) == (
        "at_capacity"
    )
    # Ending the conversation withdraws the pending transfer.
    chat.conversation_end(actor=Actor.for_staff(ingrid), conversation_id=conversation.id)
    transfer.refresh_from_db()
    assert transfer.state == "cancelled"


# -- ending with tags, feedback ---------------------------------------------------------------


def test_staff_end_with_tags_triage_and_a_feedback_prompt(team, make_youth):
    ingrid, _ = team
    conversation = chatting(make_youth, ingrid)
    staff = Actor.for_staff(ingrid)
    for kwargs, code in [
        ({"tags": ["homework"]}, "bad_tags"),
        ({"triage": "purple"}, "bad_triage"),
    ]:
        assert (
            error_code(
                chat.conversation_end, actor=staff, conversation_id=conversation.id, **kwargs
            )
            == code
        )
    conversation.refresh_from_db()
    assert conversation.state == "active"
    youth = Actor.for_youth(conversation.youth)
    ended = chat.conversation_end(
        actor=staff,
        conversation_id=conversation.id,
        tags=["stress", "school_work", "stress"],
        triage="yellow",
        feedback=True,
    )
    assert ended.tags == ["stress", "school_work"] and ended.triage == "yellow"
    frame = chat_selectors.ended_frame(ended, by="staff")
    assert frame["feedback"] is True
    assert "tags" not in frame and "triage" not in frame  # the youth sees this frame too
    # The youth answers once; bad answers change nothing.
    give = chat.feedback_give
    for scores, text, code in [
        ({"understood": 6}, "", "bad_feedback"),
        ({"understood": True}, "", "bad_feedback"),
        ({"mood": 3}, "", "bad_feedback"),
        ({}, "", "empty"),
        ({"useful": 4}, "x" * 1001, "too_long"),
    ]:
        assert (
            error_code(
                give,
                youth=youth.youth,
                conversation_id=ended.id,
                scores=scores,
                text=text,
            )
            == code
        )
    feedback = give(
        youth=youth.youth,
        conversation_id=ended.id,
        scores={"understood": 5, "talked_about": 4, "form": 3, "useful": None},
        text="Good to talk",
    )
    assert (feedback.understood, feedback.talked_about, feedback.form, feedback.useful) == (
        5,
        4,
        3,
        None,
    )
    assert b"Good" not in bytes(feedback.text)
    assert error_code(give, youth=youth.youth, conversation_id=ended.id, scores={"form": 1}) == (
        "conflict"
    )
    assert Feedback.objects.count() == 1
    # A youth cannot tag, and cannot give feedback nobody asked for.
    other = chatting(make_youth, ingrid)
    other_youth = other.youth
    assert (
        error_code(
            chat.conversation_end,
            actor=Actor.for_youth(other_youth),
            conversation_id=other.id,
            tags=["other"],
        )
        == "not_allowed"
    )
    chat.conversation_end(actor=staff, conversation_id=other.id)
    assert (
        error_code(give, youth=other_youth, conversation_id=other.id, scores={"form": 1})
        == "not_allowed"
    )


# -- continuity -------------------------------------------------------------------------------


def test_a_returning_youth_reaches_the_same_person_who_sees_their_history(team, make_youth):
    ingrid, sara = team
    youth, _ = make_youth()
    first = chatting(make_youth, ingrid, youth=youth)
    say(youth, first, "My parents are divorcing")
    chat.conversation_end(actor=Actor.for_staff(ingrid), conversation_id=first.id)
    with_sara = chatting(make_youth, sara, youth=youth)
    chat.conversation_end(actor=Actor.for_staff(sara), conversation_id=with_sara.id)
    # The youth's page offers the people they talked with, most recent first.
    assert [c["id"] for c in chat_selectors.previous_staff(youth)] == [sara.id, ingrid.id]
    again = chatting(make_youth, ingrid, youth=youth)
    context = chat_selectors.staff_context(ingrid, again.id)
    assert [e["id"] for e in context["earlier"]] == [str(first.id)]  # not Sara's chat
    reply = chat.earlier_read(user=ingrid, conversation_id=again.id, earlier_id=first.id)
    assert [m["text"] for m in reply["messages"]] == ["My parents are divorcing"]
    event = AuditEvent.objects.get(action="transcript.read")
    assert event.actor == ingrid and event.conversation_id == first.id
    assert event.detail == {"reason": "continuity", "via": str(again.id)}
    # Not someone else's conversation, not one outside retention.
    assert (
        error_code(
            chat.earlier_read, user=ingrid, conversation_id=again.id, earlier_id=with_sara.id
        )
        == "not_allowed"
    )
    chat.conversation_destroy_content(conversation=first)
    assert chat_selectors.staff_context(ingrid, again.id)["earlier"] == []
    assert (
        error_code(chat.earlier_read, user=ingrid, conversation_id=again.id, earlier_id=first.id)
        == "not_allowed"
    )
    assert AuditEvent.objects.filter(action="transcript.read").count() == 1


# -- capacity, shift, canned replies ----------------------------------------------------------


def test_capacity_and_my_shift(team, make_youth, make_staff, arena):
    ingrid, sara = team
    make_staff("kari", "peer")  # works elsewhere, not on
    for bad in (0, 11, "3", True):
        assert error_code(services.staff_set_capacity, user=ingrid, capacity=bad) == "bad_capacity"
    services.staff_set_capacity(user=ingrid, capacity=5)
    chatting(make_youth, ingrid)
    me = selectors.staff_scope(sara.staff_profile)
    rows = {row["display_name"]: row for row in selectors.shift(me)}
    assert set(rows) == {"Ingrid", "Sara"}
    assert (rows["Ingrid"]["chats"], rows["Ingrid"]["capacity"]) == (1, 5)
    assert rows["Sara"]["me"] and rows["Sara"]["chats"] == 0


def test_canned_replies_for_a_role_and_for_everyone(team):
    ingrid, sara = team
    CannedReply.objects.create(title="Hei", text="Hei! Hva tenker du på?", language="nb")
    CannedReply.objects.create(title="Sleep", text="Sleep tips", role="health_nurse", language="en")
    CannedReply.objects.create(title="Old", text="x", active=False)
    assert [r["title"] for r in canned_replies_for(ingrid.staff_profile)] == ["Hei"]
    assert [r["title"] for r in canned_replies_for(sara.staff_profile)] == ["Sleep", "Hei"]


# -- the audit log ----------------------------------------------------------------------------


def test_the_audit_log_is_append_only(team, make_youth):
    ingrid, _ = team
    conversation = chatting(make_youth, ingrid)
    chat.note_add(
        actor=Actor.for_staff(ingrid), conversation_id=conversation.id, client_id="n", text="t"
    )
    event = AuditEvent.objects.get()
    assert event.detail == {"note": str(Note.objects.get().id)}  # ids only, never the text
    event.action = "rewritten"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.update(action="x")
    if connection.vendor == "postgresql":
        # Even raw SQL is refused by the trigger.
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE audit_auditevent SET action = 'x'")
    assert AuditEvent.objects.get().action == "note.add"
