"""The queue over real WebSockets: choosing a person, crisis, status, drop-in call, take next."""

import pytest
from channels.db import database_sync_to_async

from chat.models import Conversation
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


async def new_youth(make_youth):
    _, token = await database_sync_to_async(make_youth)()
    ws, _ = await youth_socket(token)
    return ws


async def asking(make_youth, **request):
    """A new youth who sends `request`; returns (socket, their first `queued` frame)."""
    ws = await new_youth(make_youth)
    await ws.send_json_to({"type": "request", **request})
    return ws, await receive_until(ws, "queued")


async def staff_ws(user):
    cookie = await database_sync_to_async(session_cookie)(user)
    ws, welcome = await staff_socket(cookie)
    return ws, welcome


async def queue_update(ws, predicate, tries=10):
    for _ in range(tries):
        frame = await receive_until(ws, "queue.update")
        if predicate(frame["queue"]):
            return frame["queue"]
    raise AssertionError("queue never reached the expected state")


async def test_a_youth_asks_for_a_named_person_and_that_persons_queue_shows_it(team, make_youth):
    ingrid, sara = team
    sara_ws, welcome = await staff_ws(sara)
    assert welcome["queue"] == [] and welcome["status"] == "available"
    ingrid_ws, _ = await staff_ws(ingrid)
    youth, queued = await asking(make_youth, target={"staff": sara.id}, topic="school")
    assert queued["target"] == {"staff": sara.id} and queued["target_name"] == "Sara"
    assert queued["position"] == 1 and queued["eta_seconds"] == 60 and queued["open"] is True
    rows = await queue_update(sara_ws, lambda q: len(q) == 1)
    assert rows[0]["for_me"] and rows[0]["claimable"] and rows[0]["topic"] == "school"
    rows = await queue_update(ingrid_ws, lambda q: len(q) == 1)
    assert not rows[0]["for_me"] and not rows[0]["claimable"]
    await ingrid_ws.send_json_to({"type": "accept", "conversation_id": queued["conversation_id"]})
    assert (await receive_until(ingrid_ws, "error"))["code"] == "not_chosen"
    # Changing the choice keeps the place and tells both sides.
    await youth.send_json_to({"type": "change", "target": "any"})
    changed = await receive_until(youth, "queued")
    assert changed["target"] == "any" and changed["position"] == 1
    rows = await queue_update(ingrid_ws, lambda q: q and q[0]["claimable"])
    await ingrid_ws.send_json_to({"type": "claim_next"})
    assigned = await receive_until(youth, "assigned")
    assert assigned["conversation"]["staff"]["display_name"] == "Ingrid"
    for ws in (youth, sara_ws, ingrid_ws):
        await ws.disconnect()


async def test_the_crisis_flag_shows_numbers_at_once_and_alerts_staff(team, make_youth):
    ingrid, sara = team
    sara_ws, _ = await staff_ws(sara)
    first, _ = await asking(make_youth, target="any")
    second, queued = await asking(make_youth, target={"staff": ingrid.id})
    assert queued["position"] == 2  # Ingrid could take the first youth too: they are ahead
    await second.send_json_to({"type": "crisis"})
    info = await second.receive_json_from(timeout=5)
    assert info["type"] == "crisis_info"
    assert {"113", "116 117", "116 111", "116 123"} <= {line["number"] for line in info["lines"]}
    frames = await drain(sara_ws)
    (alert,) = [f for f in frames if f["type"] == "crisis.alert"]
    assert alert["state"] == "queued" and alert["alias"]
    rows = [f for f in frames if f["type"] == "queue.update"][-1]["queue"]
    assert len(rows) == 2 and rows[0]["crisis"]
    assert rows[0]["claimable"] is True  # asked for Ingrid, but anyone may answer a crisis
    assert (await receive_until(second, "queued"))["position"] == 1
    assert (await receive_until(first, "queued"))["position"] == 2
    for ws in (first, second, sara_ws):
        await ws.disconnect()


async def test_a_called_ticket_reaches_the_youths_phone_with_the_room(team, make_youth):
    ingrid, _ = team
    ingrid_ws, _ = await staff_ws(ingrid)
    youth, queued = await asking(make_youth, site="tonsberg", target={"role": "psychologist"})
    assert queued["ticket"] == "B-1" and queued["channel"] == "dropin"
    await queue_update(ingrid_ws, lambda q: len(q) == 1 and q[0]["ticket"] == "B-1")
    await ingrid_ws.send_json_to(
        {"type": "accept", "conversation_id": queued["conversation_id"], "room": "Rom 2"}
    )
    called = await receive_until(youth, "assigned")
    assert called["conversation"]["room"] == "Rom 2" and called["conversation"]["ticket"] == "B-1"
    assert called["conversation"]["arrived"] is False
    await ingrid_ws.send_json_to({"type": "arrived", "conversation_id": queued["conversation_id"]})
    arrived = await receive_until(youth, "assigned")
    assert arrived["conversation"]["arrived"] is True
    await ingrid_ws.send_json_to({"type": "no_show", "conversation_id": queued["conversation_id"]})
    assert (await receive_until(ingrid_ws, "error"))["code"] == "conflict"
    for ws in (youth, ingrid_ws):
        await ws.disconnect()


async def test_status_changes_what_youth_are_told(team, make_youth):
    ingrid, sara = team
    ingrid_ws, _ = await staff_ws(ingrid)
    sara_ws, _ = await staff_ws(sara)
    youth, queued = await asking(make_youth, target={"role": "health_nurse"})
    assert queued["eta_seconds"] == 60
    await sara_ws.send_json_to({"type": "status", "status": "away"})
    assert (await receive_until(sara_ws, "status"))["status"] == "away"
    frame = await receive_until(youth, "queued")
    assert frame["eta_seconds"] is None  # the only nurse stepped away: no honest estimate
    await sara_ws.send_json_to({"type": "status", "status": "sleeping"})
    assert (await receive_until(sara_ws, "error"))["code"] == "bad_frame"
    for ws in (youth, ingrid_ws, sara_ws):
        await ws.disconnect()


BAD_QUEUE_FRAMES = [
    ('{"type": "request", "target": {"staff": 999999}}', "bad_target"),
    ('{"type": "request", "target": {"role": "wizard"}}', "bad_target"),
    ('{"type": "request", "target": {"role": "specialist"}}', "bad_target"),
    ('{"type": "request", "site": "atlantis"}', "bad_site"),
    ('{"type": "request", "site": "Not A Slug!"}', "bad_frame"),
    ('{"type": "change", "target": "any"}', "no_conversation"),
]


async def test_bad_queue_frames_get_clear_errors_and_change_nothing(team, make_youth):
    youth = await new_youth(make_youth)
    for raw, code in BAD_QUEUE_FRAMES:
        await youth.send_to(text_data=raw)
        error = await receive_until(youth, "error")
        assert error["code"] == code, (raw, error)
    assert await database_sync_to_async(Conversation.objects.count)() == 0
    await youth.send_json_to({"type": "request", "target": "any"})
    await receive_until(youth, "queued")
    await youth.send_json_to({"type": "request", "target": "any"})
    assert (await receive_until(youth, "error"))["code"] == "already_queued"
    assert await database_sync_to_async(Conversation.objects.count)() == 1
    staff_ws_, _ = await staff_ws(team[0])
    for raw, code in [
        ('{"type": "status", "status": "sleeping"}', "bad_frame"),
        ('{"type": "arrived", "conversation_id": "nope"}', "not_found"),
        ('{"type": "accept", "conversation_id": "x", "room": "' + "r" * 50 + '"}', "bad_frame"),
    ]:
        await staff_ws_.send_to(text_data=raw)
        assert (await receive_until(staff_ws_, "error"))["code"] == code, raw
    await youth.disconnect()
    await staff_ws_.disconnect()
