"""The optional questions (age band, gender, how they heard of us): answered once per
conversation, kept only as counts in the statistics, shown with small numbers hidden."""

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat.actors import Actor
from chat.errors import ServiceError
from chat.services import about_give, conversation_end
from dropin import services as queue
from tests.conftest import db_snapshot, receive_until, youth_socket
from youthhub.stats import selectors
from youthhub.stats.models import Count
from youthhub.stats.rebuild import stats_rebuild
from youthhub.stats.selectors import Filters


def about_cells() -> list:
    return sorted(
        Count.objects.filter(metric__startswith="about_").values_list("metric", "key", "value")
    )


def today() -> Filters:
    return Filters(start=timezone.localdate(), end=timezone.localdate())


@pytest.mark.django_db
def test_answers_become_counts_and_nothing_else(arena, make_youth):
    youth, _token = make_youth()
    waiting = queue.queue_request(youth=youth)
    before = db_snapshot()
    about_give(youth=youth, conversation_id=waiting.id, answers={"age": "16_17", "heard": "friend"})
    assert about_cells() == [("about_age", "16_17", 1), ("about_heard", "friend", 1)]
    # Nothing but the counts changed: no answer and no "answered" mark on any row that could
    # tie the day's counts to the conversation.
    after = db_snapshot()
    assert {table for table in after if after[table] != before[table]} == {"stats.Count"}
    # The cells name the pool and the day, not the arena, the channel or the hour.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert set(
        Count.objects.filter(metric__startswith="about_").values_list(
            "hour", "pool_id", "site_id", "channel"
        )
    ) == {(midnight, arena.pool_id, 0, "any")}
    # Once per conversation; a second try changes nothing.
    with pytest.raises(ServiceError) as refused:
        about_give(youth=youth, conversation_id=waiting.id, answers={"gender": "girl"})
    assert refused.value.code == "conflict"
    assert about_cells() == [("about_age", "16_17", 1), ("about_heard", "friend", 1)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answers, code",
    [
        ({"age": "11"}, "bad_about"),
        ({"age": "12_15", "gender": "robot"}, "bad_about"),
        ({"shoe_size": "40"}, "bad_about"),
        ({"age": None, "gender": None, "heard": None}, "empty"),
        ({}, "empty"),
    ],
)
def test_bad_answers_are_refused_and_change_nothing(arena, make_youth, answers, code):
    youth, _token = make_youth()
    waiting = queue.queue_request(youth=youth)
    before = db_snapshot()
    with pytest.raises(ServiceError) as refused:
        about_give(youth=youth, conversation_id=waiting.id, answers=answers)
    assert refused.value.code == code
    assert db_snapshot() == before


@pytest.mark.django_db
def test_only_for_ones_own_conversation(arena, make_youth):
    youth, _token = make_youth()
    other, _token = make_youth()
    waiting = queue.queue_request(youth=youth)
    before = db_snapshot()
    with pytest.raises(ServiceError) as refused:
        about_give(youth=other, conversation_id=waiting.id, answers={"age": "12_15"})
    assert refused.value.code == "not_allowed"
    assert db_snapshot() == before


@pytest.mark.django_db
def test_the_figures_hide_small_numbers_and_a_rebuild_keeps_the_answers(arena, make_youth):
    for i in range(7):
        youth, _token = make_youth()
        conversation = queue.queue_request(youth=youth)
        answers = {"age": "16_17" if i < 6 else "21_25", "gender": "girl"}
        about_give(youth=youth, conversation_id=conversation.id, answers=answers)
        conversation_end(actor=Actor.for_youth(youth), conversation_id=conversation.id)
    tables = selectors.figures(today())
    # 6 + 1: the one 21-25 is hidden, and so the 6 with it (7 - 6 = 1).
    assert tables["about_age"].values == dict.fromkeys(tables["about_age"].labels)
    assert tables["about_age"].total == 7
    # 7 girls and nobody else: the hidden cells can only be zero, which points at no one.
    assert tables["about_gender"].values == {"girl": 7, "boy": None, "other": None, "not_say": None}
    assert tables["about_gender"].total == 7
    assert tables["about_heard"].total is None  # nobody answered it
    # An arena or a channel filter has none of them (they are kept per pool and day only).
    site = Filters(start=today().start, end=today().end, place=f"site:{arena.pk}")
    assert selectors.figures(site)["about_gender"].total is None
    channel = Filters(start=today().start, end=today().end, channel="chat")
    assert selectors.figures(channel)["about_gender"].total is None
    # The answers exist only as counts: a rebuild from the stored rows keeps them.
    before = about_cells()
    stats_rebuild(since=timezone.now() - timezone.timedelta(hours=2))
    assert about_cells() == before


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_the_youth_answers_over_the_socket(arena, make_youth):
    _, token = await database_sync_to_async(make_youth)()
    youth, _welcome = await youth_socket(token)
    await youth.send_json_to({"type": "request", "target": "any"})
    queued = await receive_until(youth, "queued")
    conversation_id = queued["conversation_id"]
    await youth.send_json_to({"type": "about", "conversation_id": conversation_id, "age": 7})
    assert (await receive_until(youth, "error"))["code"] == "bad_frame"
    await youth.send_json_to(
        {"type": "about", "conversation_id": conversation_id, "gender": "martian"}
    )
    assert (await receive_until(youth, "error"))["code"] == "bad_about"
    assert not await database_sync_to_async(about_cells)()
    await youth.send_json_to(
        {"type": "about", "conversation_id": conversation_id, "gender": "not_say", "age": None}
    )
    thanks = await receive_until(youth, "about.thanks")
    assert thanks["conversation_id"] == conversation_id
    assert await database_sync_to_async(about_cells)() == [("about_gender", "not_say", 1)]
    await youth.send_json_to({"type": "about", "conversation_id": conversation_id, "age": "12_15"})
    assert (await receive_until(youth, "error"))["code"] == "conflict"
    assert await database_sync_to_async(about_cells)() == [("about_gender", "not_say", 1)]
    await youth.disconnect()


@pytest.mark.django_db
def test_only_while_the_conversation_is_open(arena, make_youth):
    """After it ended a conversation could be answered again and again (the mark in the
    cache does not last for ever): refused, and nothing counted."""
    youth, _token = make_youth()
    conversation = queue.queue_request(youth=youth)
    conversation_end(actor=Actor.for_youth(youth), conversation_id=conversation.id)
    before = db_snapshot()
    with pytest.raises(ServiceError) as refused:
        about_give(youth=youth, conversation_id=conversation.id, answers={"age": "12_15"})
    assert refused.value.code == "closed"
    assert db_snapshot() == before
