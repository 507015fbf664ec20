"""Staff work over real WebSockets: notes stay among staff, a transfer moves a live chat
without losing anything, ending with tags and a feedback prompt, continuity, bad frames."""

import pytest
from channels.db import database_sync_to_async

from chat.models import Conversation, Feedback
from tests.conftest import drain, receive_until, session_cookie, staff_socket, youth_socket
from youthhub.audit.models import AuditEvent
from youthhub.staff.models import CannedReply

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_cleanup"),
]


async def staff_ws(user):
    cookie = await database_sync_to_async(session_cookie)(user)
    return await staff_socket(cookie)


async def youth_chatting_with(make_youth, staff_ws_, staff, token=None):
    """A youth asks for `staff` by name and is taken; returns (youth socket, conversation id)."""
    if token is None:
        _, token = await database_sync_to_async(make_youth)()
    youth, welcome = await youth_socket(token)
    await youth.send_json_to({"type": "request", "target": {"staff": staff.id}})
    queued = await receive_until(youth, "queued")
    await staff_ws_.send_json_to({"type": "accept", "conversation_id": queued["conversation_id"]})
    await receive_until(youth, "assigned")
    await receive_until(staff_ws_, "staff_context")
    return youth, queued["conversation_id"], welcome


async def test_notes_reach_every_staff_tab_and_never_the_youth(team, make_youth):
    ingrid, _ = team
    ingrid_ws, _ = await staff_ws(ingrid)
    youth, conversation_id, _ = await youth_chatting_with(make_youth, ingrid_ws, ingrid)
    second_tab, _ = await staff_ws(ingrid)
    context = await receive_until(second_tab, "staff_context")
    assert context["notes"] == [] and context["earlier"] == []
    await ingrid_ws.send_json_to(
        {
            "type": "note",
            "conversation_id": conversation_id,
            "client_id": "n1",
            "text": "Exam worry",
        }
    )
    note = await receive_until(ingrid_ws, "note")
    assert note["text"] == "Exam worry" and note["author"] == "Ingrid"
    assert (await receive_until(second_tab, "note"))["id"] == note["id"]
    frames = await drain(youth, quiet=0.5)
    assert all(f["type"] not in ("note", "staff_context") for f in frames), frames
    assert not any("Exam worry" in str(f) for f in frames)
    for ws in (ingrid_ws, second_tab, youth):
        await ws.disconnect()


async def test_a_transfer_moves_the_chat_and_the_youth_sees_the_new_person_join(team, make_youth):
    ingrid, sara = team
    ingrid_ws, _ = await staff_ws(ingrid)
    sara_ws, _ = await staff_ws(sara)
    youth, conversation_id, _ = await youth_chatting_with(make_youth, ingrid_ws, ingrid)
    await youth.send_json_to({"type": "message", "client_id": "y1", "text": "I can't sleep"})
    await receive_until(ingrid_ws, "message")
    await ingrid_ws.send_json_to(
        {
            "type": "transfer",
            "conversation_id": conversation_id,
            "target": {"staff": sara.id},
            "note": "Sleep and exams; a nurse fits better.",
        }
    )
    offer = await receive_until(sara_ws, "transfer.offer")
    mine = await receive_until(ingrid_ws, "transfer.offer")
    assert offer["transfer"]["id"] == mine["transfer"]["id"]
    assert "Sleep" not in str(offer)  # the note travels only in the preview
    transfer_id = offer["transfer"]["id"]
    # Meanwhile the youth is still with Ingrid.
    await youth.send_json_to({"type": "message", "client_id": "y2", "text": "Are you there?"})
    assert (await receive_until(ingrid_ws, "message"))["text"] == "Are you there?"
    await sara_ws.send_json_to({"type": "transfer_preview", "transfer_id": transfer_id})
    preview = await receive_until(sara_ws, "transfer.preview")
    assert [m["text"] for m in preview["messages"]] == ["I can't sleep", "Are you there?"]
    assert preview["notes"][0]["text"] == "Sleep and exams; a nurse fits better."
    await sara_ws.send_json_to({"type": "transfer_accept", "transfer_id": transfer_id})
    assigned = await receive_until(sara_ws, "assigned")
    assert assigned["conversation"]["staff"]["display_name"] == "Sara"
    replayed = []
    while (frame := await sara_ws.receive_json_from(timeout=5))["type"] != "staff_context":
        if frame["type"] == "message":
            replayed.append(frame["text"])
    context = frame
    # Sara's socket replayed the whole history, once, in order.
    assert replayed == ["I can't sleep", "Are you there?"]
    assert context["notes"][0]["kind"] == "transfer"
    joined = await receive_until(youth, "assigned")
    assert joined["conversation"]["staff"]["display_name"] == "Sara"
    transferred = await receive_until(ingrid_ws, "transferred")
    assert transferred["to"]["display_name"] == "Sara"
    # Sara has the whole history; the next message goes to Sara only.
    await youth.send_json_to({"type": "message", "client_id": "y3", "text": "Hi Sara"})
    assert (await receive_until(sara_ws, "message"))["text"] == "Hi Sara"
    ingrid_frames = await drain(ingrid_ws)
    assert not any(f.get("text") == "Hi Sara" for f in ingrid_frames), ingrid_frames
    conversation = await database_sync_to_async(Conversation.objects.get)(id=conversation_id)
    assert conversation.assigned_staff_id == sara.id
    # Ingrid's socket can no longer act on it.
    await ingrid_ws.send_json_to(
        {"type": "message", "conversation_id": conversation_id, "client_id": "s9", "text": "x"}
    )
    assert (await receive_until(ingrid_ws, "error"))["code"] == "not_allowed"
    for ws in (ingrid_ws, sara_ws, youth):
        await ws.disconnect()


async def test_end_with_tags_asks_for_feedback_and_the_youth_answers(team, make_youth):
    ingrid, _ = team
    await database_sync_to_async(CannedReply.objects.create)(title="Hei", text="Hei!")
    ingrid_ws, welcome = await staff_ws(ingrid)
    assert [c["title"] for c in welcome["canned"]] == ["Hei"]
    assert "self_harm" in welcome["tags"] and welcome["capacity"] == 3
    youth, conversation_id, _ = await youth_chatting_with(make_youth, ingrid_ws, ingrid)

    @database_sync_to_async
    def stored():
        c = Conversation.objects.get(id=conversation_id)
        return c.state, c.tags, c.triage

    before = await stored()
    assert before == ("active", [], "")
    await ingrid_ws.send_json_to(
        {"type": "end", "conversation_id": conversation_id, "tags": ["nope"], "triage": "red"}
    )
    assert (await receive_until(ingrid_ws, "error"))["code"] == "bad_tags"
    await ingrid_ws.send_json_to(
        {"type": "end", "conversation_id": conversation_id, "triage": "blue"}
    )
    assert (await receive_until(ingrid_ws, "error"))["code"] == "bad_frame"
    assert await stored() == before
    await ingrid_ws.send_json_to(
        {
            "type": "end",
            "conversation_id": conversation_id,
            "tags": ["family"],
            "triage": "green",
            "feedback": True,
        }
    )
    ended = await receive_until(youth, "ended")
    assert ended["feedback"] is True and "triage" not in ended and "tags" not in ended
    assert await stored() == ("ended", ["family"], "green")
    await youth.send_json_to(
        {"type": "feedback", "conversation_id": conversation_id, "scores": {"useful": 9}}
    )
    assert (await receive_until(youth, "error"))["code"] == "bad_frame"
    await youth.send_json_to(
        {
            "type": "feedback",
            "conversation_id": conversation_id,
            "scores": {"understood": 5, "talked_about": 5, "form": 4, "useful": 5},
            "text": "Takk",
        }
    )
    assert (await receive_until(youth, "feedback.thanks"))["conversation_id"] == conversation_id
    feedback = await database_sync_to_async(Feedback.objects.get)()
    assert feedback.form == 4
    for ws in (ingrid_ws, youth):
        await ws.disconnect()


async def test_a_returning_youth_is_offered_the_same_person_who_can_open_the_history(
    team, make_youth
):
    ingrid, _ = team
    _, token = await database_sync_to_async(make_youth)()
    ingrid_ws, _ = await staff_ws(ingrid)
    youth, first_id, welcome = await youth_chatting_with(make_youth, ingrid_ws, ingrid, token)
    assert welcome["previous_staff"] == []
    await youth.send_json_to({"type": "message", "client_id": "m1", "text": "Dad drinks"})
    await receive_until(ingrid_ws, "message")
    await ingrid_ws.send_json_to({"type": "end", "conversation_id": first_id})
    await receive_until(youth, "ended")
    await youth.disconnect()
    # Later, on the same identity: the page offers Ingrid again.
    youth, again_id, welcome = await youth_chatting_with(make_youth, ingrid_ws, ingrid, token)
    assert [p["display_name"] for p in welcome["previous_staff"]] == ["Ingrid"]
    # Ingrid's dashboard lists the earlier conversation; opening it is an audited read.
    await ingrid_ws.send_json_to({"type": "shift"})
    shift = await receive_until(ingrid_ws, "shift")
    assert {row["display_name"] for row in shift["staff"]} == {"Ingrid", "Sara"}
    await ingrid_ws.send_json_to(
        {"type": "earlier", "conversation_id": again_id, "earlier_id": first_id}
    )
    earlier = await receive_until(ingrid_ws, "earlier")
    assert [m["text"] for m in earlier["messages"]] == ["Dad drinks"]
    events = await database_sync_to_async(list)(
        AuditEvent.objects.filter(action="transcript.read").values_list(
            "conversation_id", flat=True
        )
    )
    assert [str(e) for e in events] == [first_id]
    for ws in (ingrid_ws, youth):
        await ws.disconnect()


@pytest.mark.parametrize(
    "frame, code",
    [
        ({"type": "transfer", "conversation_id": "x", "target": {"role": "peer"}}, "bad_frame"),
        ({"type": "transfer_accept", "transfer_id": "not-a-uuid"}, "not_found"),
        (
            {"type": "transfer_accept", "transfer_id": "6f1c3c1e-0000-4000-8000-000000000000"},
            "not_found",
        ),
        ({"type": "transfer_cancel"}, "bad_frame"),
        ({"type": "note", "conversation_id": "x", "client_id": "a b", "text": "t"}, "bad_frame"),
        ({"type": "note", "conversation_id": "x", "client_id": "a", "text": "t"}, "not_found"),
        ({"type": "capacity", "capacity": "3"}, "bad_frame"),
        ({"type": "capacity", "capacity": 0}, "bad_capacity"),
        ({"type": "earlier", "conversation_id": "x", "earlier_id": "y"}, "not_found"),
        ({"type": "end", "conversation_id": "x", "tags": ["a"] * 11}, "bad_frame"),
    ],
)
async def test_bad_staff_frames_get_a_clear_error_and_change_nothing(team, frame, code):
    ingrid, _ = team
    ws, _ = await staff_ws(ingrid)
    await ws.send_json_to(frame)
    error = await receive_until(ws, "error")
    assert error["code"] == code, error
    # The socket stays usable.
    await ws.send_json_to({"type": "ping"})
    await receive_until(ws, "pong")
    assert await database_sync_to_async(AuditEvent.objects.count)() == 0
    await ws.disconnect()


@pytest.mark.parametrize(
    "cookie, expected",
    [(None, "Start en samtale først."), (b"django_language=en", "Start a chat first.")],
)
async def test_error_messages_speak_the_language_the_page_was_shown_in(
    make_youth, cookie, expected
):
    from tests.conftest import connect

    _, token = await database_sync_to_async(make_youth)()
    ws = await connect("/ws/youth/", cookie)
    await ws.send_json_to({"type": "hello", "token": token})
    await receive_until(ws, "welcome")
    await ws.send_json_to({"type": "message", "client_id": "m1", "text": "hei"})
    error = await receive_until(ws, "error")
    assert (error["code"], error["message"]) == ("no_conversation", expected)
    await ws.disconnect()
