"""Abuse (issue 7, item 6): a per-identity message limit across sockets, and staff blocking an
anonymous identity for a while (chat.services.youth_block / youth_unblock). Services on the
database first, then over real WebSockets."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat import selectors, services
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import Block, Conversation, Message
from dropin import services as queue
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
from youthhub.retention import purge


def error_code(fn, *args, **kwargs) -> str:
    with pytest.raises(ServiceError) as exc:
        fn(*args, **kwargs)
    return exc.value.code


def chat_with(staff, make_youth):
    """A youth who asked for `staff` and was taken: (youth, token, conversation)."""
    youth, token = make_youth()
    conversation = queue.queue_request(youth=youth, target="any")
    conversation = queue.queue_accept(user=staff, conversation_id=conversation.id)
    return youth, token, conversation


def say(youth, conversation, client_id, text="hei"):
    return services.message_send(
        actor=Actor.for_youth(youth),
        conversation_id=conversation.id,
        client_id=client_id,
        text=text,
    )


def block(staff, conversation, duration="24h", reason=""):
    return services.youth_block(
        user=staff, conversation_id=conversation.id, duration=duration, reason=reason
    )


@pytest.fixture
def siri(make_staff):
    """A supervisor."""
    return make_staff("siri", "psychologist", is_supervisor=True)


@pytest.fixture
def partner(db):
    handover_services.service_directory_seed()
    return handover_services.partner_create_or_update(
        username="bup", password=PASSWORD, service_slug="bup-vestfold", display_name="Kari, BUP"
    ).user


# -- the per-identity message limit -------------------------------------------------------------


@pytest.mark.django_db
def test_a_youth_sends_at_most_the_limit_a_minute_and_nothing_more_is_written(
    make_youth, ingrid, settings, monkeypatch
):
    settings.YOUTHHUB_MESSAGES_PER_MINUTE = 3
    youth, _, conversation = chat_with(ingrid, make_youth)
    for n in range(3):
        say(youth, conversation, f"m{n}")
    with pytest.raises(ServiceError) as exc:
        say(youth, conversation, "m3")
    assert exc.value.code == "rate_limited"
    assert "minutt" in exc.value.message  # in bokmål, the default
    assert Message.objects.filter(conversation=conversation).count() == 3
    conversation.refresh_from_db()
    assert conversation.next_seq == 4  # no seq was taken either
    # A resend of a stored message (a reconnect's outbox) is no new message: it is answered.
    frame, created = say(youth, conversation, "m1")
    assert not created and frame["seq"] == 2
    # Staff are not limited by it.
    for n in range(5):
        services.message_send(
            actor=Actor.for_staff(ingrid),
            conversation_id=conversation.id,
            client_id=f"s{n}",
            text="hei",
        )
    # Another youth has a limit of their own.
    other, _, theirs = chat_with(ingrid, make_youth)
    for n in range(3):
        say(other, theirs, f"o{n}")
    # The next minute, the youth may write again.
    monkeypatch.setattr("youthhub.ratelimit.clock", lambda: 1_800_000_030.0 + 60)
    say(youth, conversation, "m3")


# -- blocking: who may --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_assigned_staff_member_blocks_and_the_chat_ends_calmly(make_youth, ingrid):
    youth, _, conversation = chat_with(ingrid, make_youth)
    say(youth, conversation, "y1")
    before = timezone.now()
    blocked, ended = block(ingrid, conversation, "24h", "abuse")
    assert [c.id for c in ended] == [conversation.id]
    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.ENDED and conversation.ended_at
    assert blocked.youth_id == youth.id and blocked.by == ingrid and blocked.reason == "abuse"
    assert timedelta(hours=24) <= blocked.until - before < timedelta(hours=24, minutes=1)
    (event,) = AuditEvent.objects.filter(action="block.add")
    assert event.actor == ingrid and event.conversation_id == conversation.id
    assert event.detail == {"block": str(blocked.id), "duration": "24h", "reason": "abuse"}
    # While blocked: no request (chat, drop-in, crisis), no message.
    assert error_code(queue.queue_request, youth=youth, target="any") == "blocked"
    assert error_code(queue.queue_crisis, youth=youth) == "blocked"
    assert error_code(say, youth, conversation, "y2") == "blocked"
    with pytest.raises(ServiceError) as exc:
        queue.queue_request(youth=youth, target="any")
    assert "116 111" in exc.value.message and "113" in exc.value.message
    assert Conversation.objects.filter(youth=youth).count() == 1
    # Staff see it among the blocks they may lift; the youth's welcome says so.
    assert [card["id"] for card in selectors.staff_blocks(ingrid)] == [str(blocked.id)]
    state = selectors.youth_blocked_state(youth)
    assert state["until"] == blocked.until.isoformat()
    assert "116 111" in [line["number"] for line in state["lines"]]


@pytest.mark.django_db
def test_a_waiting_youth_from_an_earlier_chat_is_blocked_and_leaves_the_queue(make_youth, ingrid):
    """Blocked from a chat that ended (within a day): their new request is abandoned."""
    youth, _, conversation = chat_with(ingrid, make_youth)
    services.conversation_end(actor=Actor.for_staff(ingrid), conversation_id=conversation.id)
    waiting = queue.queue_request(youth=youth, target="any")
    _, ended = block(ingrid, conversation, "1h")
    assert [c.id for c in ended] == [waiting.id]
    waiting.refresh_from_db()
    assert waiting.state == Conversation.State.ABANDONED


@pytest.mark.django_db
def test_nobody_else_may_block_and_nothing_changes(make_youth, ingrid, sara, siri, partner):
    youth, _, conversation = chat_with(ingrid, make_youth)
    for user in (sara, siri, partner):
        assert error_code(block, user, conversation) == "not_allowed", user
    assert not Block.objects.exists() and not AuditEvent.objects.filter(action="block.add")
    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.ACTIVE


@pytest.mark.django_db
def test_bad_durations_and_reasons_are_refused(make_youth, ingrid):
    _, _, conversation = chat_with(ingrid, make_youth)
    for duration in ("2h", "", "1H", "24", "7d ", "999d", None, 24):
        assert error_code(block, ingrid, conversation, duration) == "bad_duration"
    for reason in ("rude", "ABUSE", "x" * 16):
        assert error_code(block, ingrid, conversation, "1h", reason) == "bad_block_reason"
    assert error_code(services.youth_block, user=ingrid, conversation_id="nope", duration="1h") == (
        "not_found"
    )
    assert not Block.objects.exists()
    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.ACTIVE


@pytest.mark.django_db
def test_one_block_at_a_time_and_not_from_a_chat_that_ended_long_ago(make_youth, ingrid):
    youth, _, conversation = chat_with(ingrid, make_youth)
    first, _ = block(ingrid, conversation, "1h")
    assert error_code(block, ingrid, conversation, "7d") == "conflict"
    assert Block.objects.get().until == first.until
    # Once it ran out, a new block may be placed (the old row goes).
    Block.objects.update(until=timezone.now() - timedelta(seconds=1))
    second, _ = block(ingrid, conversation, "1h")
    assert list(Block.objects.values_list("id", flat=True)) == [second.id]
    # Not from a chat that ended more than a day ago.
    _, _, old = chat_with(ingrid, make_youth)
    services.conversation_end(actor=Actor.for_staff(ingrid), conversation_id=old.id)
    Conversation.objects.filter(pk=old.pk).update(ended_at=timezone.now() - timedelta(hours=25))
    assert error_code(block, ingrid, old) == "closed"


# -- the end of a block: by time, or lifted -----------------------------------------------------


@pytest.mark.django_db
def test_a_block_ends_by_itself(make_youth, ingrid):
    youth, _, conversation = chat_with(ingrid, make_youth)
    block(ingrid, conversation, "1h")
    # An hour later (the clock moved by moving the block's end into the past).
    Block.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert selectors.youth_blocked_state(youth) is None
    assert selectors.staff_blocks(ingrid) == []
    again = queue.queue_request(youth=youth, target="any")
    assert again.state == Conversation.State.QUEUED


@pytest.mark.django_db
def test_the_blocker_or_a_supervisor_lifts_a_block_early(make_youth, ingrid, sara, siri):
    youth, _, conversation = chat_with(ingrid, make_youth)
    blocked, _ = block(ingrid, conversation, "7d", "spam")
    assert [c["id"] for c in selectors.staff_blocks(siri)] == [str(blocked.id)]
    assert selectors.staff_blocks(sara) == []
    assert error_code(services.youth_unblock, user=sara, block_id=blocked.id) == "not_allowed"
    assert error_code(services.youth_unblock, user=ingrid, block_id="x") == "not_found"
    assert Block.objects.exists()
    card = services.youth_unblock(user=ingrid, block_id=blocked.id)
    assert card["active"] is False and card["id"] == str(blocked.id)
    assert not Block.objects.exists()
    (event,) = AuditEvent.objects.filter(action="block.lift")
    assert event.actor == ingrid and event.detail == {"block": str(blocked.id)}
    assert event.conversation_id == conversation.id
    assert error_code(services.youth_unblock, user=ingrid, block_id=blocked.id) == "not_found"
    queue.queue_request(youth=youth, target="any")

    # A supervisor may lift a colleague's block.
    other, _, theirs = chat_with(ingrid, make_youth)
    blocked, _ = block(ingrid, theirs, "1h")
    services.youth_unblock(user=siri, block_id=blocked.id)
    assert not Block.objects.filter(youth=other).exists()


@pytest.mark.django_db
def test_the_purge_deletes_ended_blocks_and_a_block_goes_with_its_identity(make_youth, ingrid):
    youth, _, conversation = chat_with(ingrid, make_youth)
    blocked, _ = block(ingrid, conversation, "1h")
    report = purge(now=timezone.now())
    assert report.blocks_deleted == 0 and Block.objects.exists()  # still in force
    report = purge(now=blocked.until + timedelta(seconds=1))
    assert report.blocks_deleted == 1 and not Block.objects.exists()
    assert purge(now=blocked.until + timedelta(seconds=2)).blocks_deleted == 0
    (event,) = AuditEvent.objects.filter(action="retention.purge")
    assert event.detail["blocks_deleted"] == "1"
    # A block never outlives its identity.
    other, _, theirs = chat_with(ingrid, make_youth)
    block(ingrid, theirs, "7d")
    other.delete()
    assert not Block.objects.exists()


# -- over WebSockets ----------------------------------------------------------------------------


async def staff_ws(user):
    return await staff_socket(await database_sync_to_async(session_cookie)(user))


async def youth_in_chat_with(staff_ws_, staff, token):
    youth, _ = await youth_socket(token)
    await youth.send_json_to({"type": "request", "target": {"staff": staff.id}})
    queued = await receive_until(youth, "queued")
    await staff_ws_.send_json_to({"type": "accept", "conversation_id": queued["conversation_id"]})
    await receive_until(youth, "assigned")
    await receive_until(staff_ws_, "staff_context")
    return youth, queued["conversation_id"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_the_limit_holds_across_two_sockets_of_one_youth(team, make_youth, settings):
    settings.YOUTHHUB_MESSAGES_PER_MINUTE = 4
    ingrid, sara = team
    ingrid_ws, _ = await staff_ws(ingrid)
    _, token = await database_sync_to_async(make_youth)()
    first, conversation_id = await youth_in_chat_with(ingrid_ws, ingrid, token)
    second, _ = await youth_socket(token, conversation_id=conversation_id, last_seq=0)
    for n, ws in enumerate((first, second, first, second)):
        await ws.send_json_to({"type": "message", "client_id": f"y{n}", "text": f"hei {n}"})
        while (await receive_until(ws, "message"))["client_id"] != f"y{n}":
            pass  # both tabs show every message: wait for this one's echo
    for ws, client_id in ((first, "y4"), (second, "y5")):
        await ws.send_json_to({"type": "message", "client_id": client_id, "text": "en til"})
        error = await receive_until(ws, "error")
        assert error["code"] == "rate_limited" and error["client_id"] == client_id
    stored = await database_sync_to_async(
        lambda: Message.objects.filter(conversation_id=conversation_id).count()
    )()
    assert stored == 4
    # Another youth in another chat writes freely.
    sara_ws, _ = await staff_ws(sara)
    _, other_token = await database_sync_to_async(make_youth)()
    other, _ = await youth_in_chat_with(sara_ws, sara, other_token)
    await other.send_json_to({"type": "message", "client_id": "o1", "text": "hei"})
    assert (await receive_until(other, "message"))["client_id"] == "o1"
    for ws in (first, second, other, ingrid_ws, sara_ws):
        await ws.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_a_block_reaches_every_socket_of_the_youth_and_holds_on_reconnect(
    team, make_youth, make_staff
):
    ingrid, sara = team
    siri = await database_sync_to_async(make_staff)("siri", "psychologist", is_supervisor=True)
    ingrid_ws, _ = await staff_ws(ingrid)
    sara_ws, _ = await staff_ws(sara)
    siri_ws, welcome = await staff_ws(siri)
    assert welcome["blocks"] == []
    _, token = await database_sync_to_async(make_youth)()
    first, conversation_id = await youth_in_chat_with(ingrid_ws, ingrid, token)
    # A second tab, in English: the numbers come in its own language.
    second = await connect("/ws/youth/", b"django_language=en")
    await second.send_json_to({"type": "hello", "token": token})
    assert (await receive_until(second, "welcome"))["blocked"] is None

    # Sara is not in the chat; a youth cannot block at all.
    await sara_ws.send_json_to(
        {"type": "block", "conversation_id": conversation_id, "duration": "1h"}
    )
    assert (await receive_until(sara_ws, "error"))["code"] == "not_allowed"
    await first.send_json_to(
        {"type": "block", "conversation_id": conversation_id, "duration": "1h"}
    )
    assert (await receive_until(first, "error"))["code"] == "unknown_type"
    # Bad input from Ingrid: a clear error, nothing changed.
    for bad, code in (
        ({"duration": "1y"}, "bad_duration"),
        ({"duration": "1h", "reason": "mean"}, "bad_block_reason"),
        ({"duration": 1}, "bad_frame"),
        ({"duration": "1h", "extra": 1}, "bad_frame"),
    ):
        await ingrid_ws.send_json_to({"type": "block", "conversation_id": conversation_id, **bad})
        assert (await receive_until(ingrid_ws, "error"))["code"] == code, bad
    assert not await database_sync_to_async(Block.objects.exists)()

    await ingrid_ws.send_json_to(
        {"type": "block", "conversation_id": conversation_id, "duration": "1h", "reason": "spam"}
    )
    ended = await receive_until(ingrid_ws, "ended")
    assert ended["conversation_id"] == conversation_id and ended["state"] == "ended"
    card = (await receive_until(ingrid_ws, "block.update"))["block"]
    assert card["active"] and card["reason"] == "spam" and card["by"]["id"] == ingrid.id
    assert card["conversation_id"] == conversation_id
    # The supervisor hears of it; an uninvolved colleague does not.
    assert (await receive_until(siri_ws, "block.update"))["block"]["id"] == card["id"]
    assert all(f["type"] != "block.update" for f in await drain(sara_ws))

    # Every socket of the youth: the chat ended, then `blocked` with the numbers.
    for ws, language_text in ((first, "Alarmtelefonen"), (second, "Helpline for children")):
        frames = await drain(ws)
        kinds = [f["type"] for f in frames]
        assert "ended" in kinds and "blocked" in kinds, kinds
        blocked = frames[kinds.index("blocked")]
        assert blocked["until"] == card["until"]
        assert "116 111" in [line["number"] for line in blocked["lines"]]
        assert any(language_text in line["text"] for line in blocked["lines"]), blocked
        # Staff-only: the card, and why.
        assert "block.update" not in kinds and "spam" not in str(frames)
    # Nothing works while blocked.
    for frame in (
        {"type": "request", "target": "any"},
        {"type": "crisis"},
        {"type": "message", "client_id": "after", "text": "hei"},
    ):
        await first.send_json_to(frame)
        error = await receive_until(first, "error")
        assert error["code"] == "blocked", error
        assert "116 111" in error["message"]
    # A reconnect is told at once.
    for ws in (first, second):
        await ws.disconnect()
    again, welcome = await youth_socket(token)
    assert welcome["blocked"]["until"] == card["until"] and welcome["conversation"] is None
    assert "113" in [line["number"] for line in welcome["blocked"]["lines"]]
    # Staff who come back see the block they may lift.
    more_ingrid, welcome = await staff_ws(ingrid)
    assert [b["id"] for b in welcome["blocks"]] == [card["id"]]

    # Lifted early by the supervisor: the youth's page is told, and may ask again.
    await siri_ws.send_json_to({"type": "unblock", "block_id": card["id"]})
    lifted = (await receive_until(siri_ws, "block.update"))["block"]
    assert lifted["id"] == card["id"] and lifted["active"] is False
    while (await receive_until(ingrid_ws, "block.update"))["block"]["active"]:
        pass  # the reply and the event of the block itself came first
    await receive_until(again, "unblocked")
    await again.send_json_to({"type": "request", "target": "any"})
    assert (await receive_until(again, "queued"))["conversation_id"] != conversation_id
    actions = await database_sync_to_async(
        lambda: sorted(
            AuditEvent.objects.filter(action__startswith="block.").values_list("action", flat=True)
        )
    )()
    assert actions == ["block.add", "block.lift"]
    for ws in (again, ingrid_ws, sara_ws, siri_ws, more_ingrid):
        await ws.disconnect()
