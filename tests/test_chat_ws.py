"""Protocol v1 over real WebSockets (WebsocketCommunicator) on the configured channel layer:
Redis on the services backend, the in-memory layer on the embedded one."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from chat.models import Conversation, Message
from tests.conftest import (
    drain,
    receive_until,
    session_cookie,
    staff_socket,
    youth_socket,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_cleanup"),
]


async def start_chat(make_youth, staff_user):
    """A youth asks, Ingrid accepts. Returns (youth ws, staff ws, conversation id, token)."""
    _, token = await database_sync_to_async(make_youth)()
    cookie = await database_sync_to_async(session_cookie)(staff_user)
    youth, welcome = await youth_socket(token)
    assert welcome["conversation"] is None
    staff, _ = await staff_socket(cookie)
    await youth.send_json_to({"type": "request", "target": "any"})
    queued = await receive_until(youth, "queued")
    assert queued["position"] == 1
    update = await receive_until(staff, "queue.update")
    assert [e["conversation_id"] for e in update["queue"]] == [queued["conversation_id"]]
    await staff.send_json_to({"type": "accept", "conversation_id": queued["conversation_id"]})
    assigned = await receive_until(staff, "assigned")
    assert assigned["conversation"]["id"] == queued["conversation_id"]
    youth_assigned = await receive_until(youth, "assigned")
    assert youth_assigned["conversation"]["staff"]["display_name"] == "Ingrid"
    return youth, staff, queued["conversation_id"], token


async def close(*sockets):
    for ws in sockets:
        await ws.disconnect()


async def test_full_flow_messages_typing_read_end(make_youth, ingrid):
    youth, staff, cid, _ = await start_chat(make_youth, ingrid)

    await youth.send_json_to({"type": "message", "client_id": "y1", "text": "hei 🦊"})
    own = await receive_until(youth, "message")
    theirs = await receive_until(staff, "message")
    assert own == theirs
    assert theirs["seq"] == 1 and theirs["sender"] == "youth" and theirs["text"] == "hei 🦊"

    await staff.send_json_to({"type": "typing", "conversation_id": cid, "active": True})
    typing = await receive_until(youth, "typing")
    assert typing == {"type": "typing", "conversation_id": cid, "who": "staff", "active": True}

    await staff.send_json_to(
        {
            "type": "message",
            "conversation_id": cid,
            "client_id": "s1",
            "text": "Hei! Jeg heter Ingrid.",
        }
    )
    reply = await receive_until(youth, "message")
    assert reply["seq"] == 2 and reply["sender_name"] == "Ingrid"

    await youth.send_json_to({"type": "read", "seq": 2})
    read = await receive_until(staff, "read")
    assert read == {"type": "read", "conversation_id": cid, "reader": "youth", "seq": 2}

    await staff.send_json_to({"type": "end", "conversation_id": cid})
    ended = await receive_until(youth, "ended")
    assert ended["state"] == "ended" and ended["by"] == "staff"
    # Only one `ended` reaches the staff socket even though it gets both reply and event.
    staff_frames = [f["type"] for f in await drain(staff)]
    assert staff_frames.count("ended") <= 1
    await close(youth, staff)


async def test_typing_is_relayed_by_a_socket_that_checked_and_refused_once_ended(
    make_youth, ingrid, sara, monkeypatch
):
    """A typing frame is checked in the database once; within TYPING_RECHECK the socket
    relays the next ones itself. An `ended` the socket saw drops the check at once."""
    from chat import consumers

    youth, staff, cid, _ = await start_chat(make_youth, ingrid)
    await staff.send_json_to({"type": "typing", "conversation_id": cid, "active": True})
    assert (await receive_until(youth, "typing"))["active"] is True
    # Taken from Ingrid behind the socket's back (no event): within the window the socket
    # still relays; with the window gone the database answers.
    await database_sync_to_async(Conversation.objects.filter(id=cid).update)(assigned_staff=sara)
    await staff.send_json_to({"type": "typing", "conversation_id": cid, "active": False})
    assert (await receive_until(youth, "typing"))["active"] is False
    monkeypatch.setattr(consumers, "TYPING_RECHECK", 0.0)
    await staff.send_json_to({"type": "typing", "conversation_id": cid, "active": True})
    assert (await receive_until(staff, "error"))["code"] == "not_allowed"
    await database_sync_to_async(Conversation.objects.filter(id=cid).update)(assigned_staff=ingrid)
    monkeypatch.setattr(consumers, "TYPING_RECHECK", 3600.0)
    await youth.send_json_to({"type": "typing", "active": True})
    assert (await receive_until(staff, "typing"))["who"] == "youth"  # checked now
    await staff.send_json_to({"type": "end", "conversation_id": cid})
    await receive_until(youth, "ended")
    await youth.send_json_to({"type": "typing", "active": True})
    assert (await receive_until(youth, "error"))["code"] == "closed"
    await close(youth, staff)


async def test_read_marks_only_move_forward_within_what_exists(make_youth, ingrid):
    youth, staff, cid, _ = await start_chat(make_youth, ingrid)
    for i in range(3):
        await youth.send_json_to({"type": "message", "client_id": f"y{i}", "text": f"y {i}"})
    await receive_until(staff, "message")
    await drain(staff, 0.3)
    await staff.send_json_to({"type": "read", "conversation_id": cid, "seq": 2})
    assert (await receive_until(youth, "read"))["seq"] == 2
    await staff.send_json_to({"type": "read", "conversation_id": cid, "seq": 1})  # behind
    await staff.send_json_to({"type": "read", "conversation_id": cid, "seq": 4})  # not there
    assert (await receive_until(staff, "error"))["code"] == "bad_seq"
    await youth.send_json_to({"type": "read", "seq": 3})  # the youth's own mark
    assert (await receive_until(staff, "read")) == {
        "type": "read",
        "conversation_id": cid,
        "reader": "youth",
        "seq": 3,
    }
    conversation = await database_sync_to_async(Conversation.objects.get)(id=cid)
    assert (conversation.staff_read_seq, conversation.youth_read_seq) == (2, 3)
    await close(youth, staff)


async def test_live_equals_replay(make_youth, ingrid):
    youth, staff, cid, _ = await start_chat(make_youth, ingrid)
    live = []
    for i in range(5):
        await youth.send_json_to({"type": "message", "client_id": f"y{i}", "text": f"y {i}"})
        await staff.send_json_to(
            {"type": "message", "conversation_id": cid, "client_id": f"s{i}", "text": f"s {i}"}
        )
    live_youth = [f for f in await drain(youth, 0.5) if f["type"] == "message"]
    live_staff = [f for f in await drain(staff, 0.5) if f["type"] == "message"]
    assert [f["seq"] for f in live_youth] == list(range(1, 11))
    assert live_youth == live_staff
    live = live_youth

    await youth.send_json_to({"type": "sync", "after_seq": 0})
    history = await receive_until(youth, "history")
    assert history["complete"] and history["latest_seq"] == 10
    assert history["messages"] == live
    await staff.send_json_to({"type": "sync", "conversation_id": cid, "after_seq": 4})
    assert (await receive_until(staff, "history"))["messages"] == live[4:]
    await close(youth, staff)


async def test_reconnect_gets_every_missed_message_once_in_order(make_youth, ingrid):
    youth, staff, cid, token = await start_chat(make_youth, ingrid)
    await youth.send_json_to({"type": "message", "client_id": "y1", "text": "før"})
    await receive_until(youth, "message")
    await youth.disconnect()  # the phone sleeps

    for i in range(3):
        await staff.send_json_to(
            {
                "type": "message",
                "conversation_id": cid,
                "client_id": f"s{i}",
                "text": f"mens du sov {i}",
            }
        )
    await drain(staff)

    youth, welcome = await youth_socket(token, conversation_id=cid, last_seq=1)
    assert welcome["conversation"]["id"] == cid and welcome["conversation"]["latest_seq"] == 4
    replayed = [f for f in await drain(youth) if f["type"] == "message"]
    assert [f["seq"] for f in replayed] == [2, 3, 4]
    assert [f["text"] for f in replayed] == [f"mens du sov {i}" for i in range(3)]

    # A resend of an acknowledged message after reconnect is stored once and echoed once.
    await youth.send_json_to({"type": "message", "client_id": "y1", "text": "før"})
    assert await youth.receive_nothing(timeout=0.3)  # seq 1 was already delivered here
    assert await database_sync_to_async(Message.objects.filter(conversation_id=cid).count)() == 4
    await close(youth, staff)


async def test_a_message_that_overtakes_an_earlier_one_waits_for_it(
    make_youth, ingrid, monkeypatch
):
    """Ingrid's message 1 is committed but its event is late (held back here); the youth's
    own message 2 is echoed first. The youth page still gets 1 then 2, each once: from the
    late event when it comes within GAP_WAIT (no database call), else from the database."""
    from chat import consumers, events, services
    from chat.actors import Actor

    youth, staff, cid, _ = await start_chat(make_youth, ingrid)
    late: list[tuple[str, dict]] = []
    fills = []  # gaps filled from the database (the staff socket's own catch-up is not one)
    history = consumers.selectors.history

    def counting_history(*args, upto_seq=None, **kwargs):
        if upto_seq is not None:
            fills.append(upto_seq)
        return history(*args, upto_seq=upto_seq, **kwargs)

    monkeypatch.setattr(consumers.selectors, "history", counting_history)

    async def staff_message_arriving_late(client_id: str) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(events, "_send", lambda group, frame: late.append((group, frame)))
            await database_sync_to_async(services.message_send)(
                actor=Actor.for_staff(ingrid),
                conversation_id=cid,
                client_id=client_id,
                text="sent",
            )

    async def youth_says(client_id: str) -> None:
        await youth.send_json_to({"type": "message", "client_id": client_id, "text": "me"})
        assert await youth.receive_nothing(timeout=0.1)  # the echo waits for the earlier one

    monkeypatch.setattr(consumers, "GAP_WAIT", 5.0)
    await staff_message_arriving_late("s1")
    await youth_says("y2")
    group, frame = late.pop()
    await events.publish_now(group, frame)
    got = [f for f in await drain(youth) if f["type"] == "message"]
    assert [(f["seq"], f["client_id"]) for f in got] == [(1, "s1"), (2, "y2")]
    assert fills == []

    monkeypatch.setattr(consumers, "GAP_WAIT", 0.2)
    await staff_message_arriving_late("s3")  # ... and this one's event is lost for good
    await youth_says("y4")
    got = [f for f in await drain(youth, 0.6) if f["type"] == "message"]
    assert [(f["seq"], f["client_id"]) for f in got] == [(3, "s3"), (4, "y4")]
    assert fills == [4, 4]  # the youth's socket and Ingrid's, once each

    # The database is away when the gap is due: the held echo must not vanish; the socket
    # closes with 4012 and the page reconnects and gets it by last_seq.
    def failing_history(*args, upto_seq=None, **kwargs):
        if upto_seq is not None:
            raise ConnectionError("database away")
        return history(*args, upto_seq=upto_seq, **kwargs)

    monkeypatch.setattr(consumers.selectors, "history", failing_history)
    await staff_message_arriving_late("s5")
    await youth.send_json_to({"type": "message", "client_id": "y6", "text": "me"})
    while (output := await youth.receive_output(timeout=2))["type"] != "websocket.close":
        assert json.loads(output["text"])["type"] != "message"  # nothing out of order
    assert output["code"] == consumers.CLOSE_RECONNECT
    await staff.disconnect()


async def test_stale_last_seq_of_another_conversation_is_ignored(make_youth, ingrid):
    youth, staff, cid, token = await start_chat(make_youth, ingrid)
    await staff.send_json_to(
        {"type": "message", "conversation_id": cid, "client_id": "s", "text": "hei"}
    )
    await receive_until(youth, "message")
    await youth.disconnect()
    youth, _ = await youth_socket(token, conversation_id="some-old-conversation", last_seq=99)
    replayed = [f for f in await drain(youth) if f["type"] == "message"]
    assert [f["seq"] for f in replayed] == [1]
    await close(youth, staff)


async def test_past_the_replay_bound_the_client_is_told_to_resync(
    make_youth,
    ingrid,
    settings,
):
    settings.YOUTHHUB_REPLAY_LIMIT = 3
    youth, staff, cid, token = await start_chat(make_youth, ingrid)
    await youth.disconnect()
    for i in range(5):
        await staff.send_json_to(
            {"type": "message", "conversation_id": cid, "client_id": f"s{i}", "text": str(i)}
        )
    await drain(staff)
    youth, _ = await youth_socket(token, conversation_id=cid, last_seq=0)
    resync = await receive_until(youth, "resync_required")
    assert resync == {"type": "resync_required", "conversation_id": cid, "latest_seq": 5}
    await youth.send_json_to({"type": "sync", "after_seq": 0})
    page1 = await receive_until(youth, "history")
    assert [m["seq"] for m in page1["messages"]] == [1, 2, 3] and not page1["complete"]
    await youth.send_json_to({"type": "sync", "after_seq": 3})
    page2 = await receive_until(youth, "history")
    assert [m["seq"] for m in page2["messages"]] == [4, 5] and page2["complete"]
    await close(youth, staff)


async def test_two_staff_accept_at_once_exactly_one_wins(make_youth, ingrid, sara):
    _, token = await database_sync_to_async(make_youth)()
    youth, _ = await youth_socket(token)
    await youth.send_json_to({"type": "request", "target": "any"})
    cid = (await receive_until(youth, "queued"))["conversation_id"]
    cookies = [await database_sync_to_async(session_cookie)(u) for u in (ingrid, sara)]
    a, _ = await staff_socket(cookies[0])
    b, _ = await staff_socket(cookies[1])
    await asyncio.gather(
        a.send_json_to({"type": "accept", "conversation_id": cid}),
        b.send_json_to({"type": "accept", "conversation_id": cid}),
    )
    outcomes = []
    for ws in (a, b):
        frames = [f for f in await drain(ws) if f["type"] in ("assigned", "error")]
        assert len(frames) == 1, frames
        outcomes.append(frames[0])
    kinds = sorted(f["type"] for f in outcomes)
    assert kinds == ["assigned", "error"]
    assert next(f for f in outcomes if f["type"] == "error")["code"] == "conflict"
    conversation = await database_sync_to_async(Conversation.objects.get)(id=cid)
    assert conversation.state == "active"
    await close(youth, a, b)


BAD_FRAMES = [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_frame"),
    ('{"no_type": 1}', "bad_frame"),
    ('{"type": "launch_rocket"}', "unknown_type"),
    ('{"type": "message", "text": "no client id"}', "bad_frame"),
    ('{"type": "message", "client_id": "a b", "text": "space in id"}', "bad_frame"),
    ('{"type": "message", "client_id": "x", "text": 5}', "bad_frame"),
    # A lone surrogate is no text at all (found by the fuzzer: it crashed the encryption).
    ('{"type": "message", "client_id": "x", "text": "\\ud800"}', "bad_frame"),
    ('{"type": "read", "seq": -1}', "bad_frame"),
    ('{"type": "read", "seq": 99}', "bad_seq"),
    ('{"type": "typing", "active": true, "extra": 1}', "bad_frame"),
    ('{"type": "request", "target": {"staff": 1, "role": "peer"}}', "bad_frame"),
    ('{"type": "request", "target": "any"}', "already_in_chat"),
    ('{"type": "change", "target": "any"}', "already_in_chat"),
]


async def test_bad_frames_get_stable_errors_write_nothing_and_keep_the_socket(
    make_youth, ingrid, settings
):
    youth, staff, cid, _ = await start_chat(make_youth, ingrid)
    too_long = json.dumps(
        {
            "type": "message",
            "client_id": "long",
            "text": "x" * (settings.YOUTHHUB_MAX_MESSAGE_CHARS + 1),
        }
    )
    too_large = json.dumps({"type": "message", "client_id": "big", "text": "x" * 40000})
    for raw, code in [*BAD_FRAMES, (too_long, "too_long"), (too_large, "too_large")]:
        await youth.send_to(text_data=raw)
        error = await receive_until(youth, "error")
        assert error["code"] == code, (raw[:60], error)
        assert error["message"]
    await youth.send_to(bytes_data=b"\x00\x01")
    assert (await receive_until(youth, "error"))["code"] == "bad_frame"
    assert await database_sync_to_async(Message.objects.count)() == 0
    # Still usable: a valid frame works.
    await youth.send_json_to({"type": "message", "client_id": "ok", "text": "fortsatt her"})
    assert (await receive_until(youth, "message"))["seq"] == 1
    await close(youth, staff)


async def test_frames_need_hello_first_and_hello_once(make_youth):
    from tests.conftest import connect

    _, token = await database_sync_to_async(make_youth)()
    ws = await connect("/ws/youth/")
    await ws.send_json_to({"type": "request", "target": "any"})
    assert (await ws.receive_json_from())["code"] == "hello_required"
    await ws.send_json_to({"type": "hello", "token": token})
    assert (await ws.receive_json_from())["type"] == "welcome"
    await ws.send_json_to({"type": "hello", "token": token})
    assert (await ws.receive_json_from())["code"] == "not_allowed"
    await ws.disconnect()


async def test_staff_cannot_touch_a_conversation_they_are_not_in(
    make_youth,
    ingrid,
    sara,
):
    youth, staff, cid, _ = await start_chat(make_youth, ingrid)
    other, _ = await staff_socket(await database_sync_to_async(session_cookie)(sara))
    for frame in [
        {"type": "message", "conversation_id": cid, "client_id": "x", "text": "snoop"},
        {"type": "sync", "conversation_id": cid, "after_seq": 0},
        {"type": "end", "conversation_id": cid},
        {"type": "read", "conversation_id": cid, "seq": 0},
    ]:
        await other.send_json_to(frame)
        error = await receive_until(other, "error")
        assert error["code"] == "not_allowed", frame
    conversation = await database_sync_to_async(Conversation.objects.get)(id=cid)
    assert conversation.state == "active" and conversation.next_seq == 1
    await close(youth, staff, other)


async def test_too_many_frames_per_second_are_refused(make_youth, settings):
    settings.YOUTHHUB_FRAME_BURST = 5
    settings.YOUTHHUB_FRAMES_PER_SECOND = 1
    _, token = await database_sync_to_async(make_youth)()
    youth, _ = await youth_socket(token)  # hello took one token
    for _ in range(6):
        await youth.send_json_to({"type": "ping"})
    frames = [await youth.receive_json_from() for _ in range(6)]
    assert [f["type"] for f in frames].count("pong") == 4
    assert frames[-1] == {"type": "error", "code": "rate_limited", "message": frames[-1]["message"]}
    await youth.disconnect()


async def test_a_bad_token_is_refused_and_closed(db):
    from tests.conftest import connect

    ws = await connect("/ws/youth/")
    await ws.send_json_to({"type": "hello", "token": "x" * 43})
    assert (await ws.receive_json_from())["code"] == "unauthorized"
    assert (await ws.receive_output())["type"] == "websocket.close"


async def test_staff_socket_requires_a_logged_in_staff_user(make_youth, django_user_model):
    from tests.conftest import connect

    ws = await connect("/ws/staff/")
    assert (await ws.receive_json_from())["code"] == "unauthorized"
    assert (await ws.receive_output())["type"] == "websocket.close"
    plain = await database_sync_to_async(django_user_model.objects.create_user)(
        "plain", password="x"
    )
    ws = await connect("/ws/staff/", await database_sync_to_async(session_cookie)(plain))
    assert (await ws.receive_json_from())["code"] == "unauthorized"


async def test_foreign_origin_is_rejected(db):
    from channels.testing import WebsocketCommunicator

    from youthhub.asgi import application

    ws = WebsocketCommunicator(
        application, "/ws/youth/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await ws.connect()
    assert not connected
