"""chat.events: publishing from a worker's database thread hands the frame to the event loop
and returns; the frames leave in the order they were published; a full outbox counts as a
failed publish (the sockets then reconnect and catch up: chat.layerwatch)."""

import asyncio
import logging

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import events, layerwatch

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_cleanup"),
]


@pytest.fixture
def db_thread_publish():
    """Publish as a service does: on the database thread, outside any transaction."""

    def publish(frames: list[tuple[str, dict]]) -> None:
        for group, frame in frames:
            events.publish_on_commit(group, frame)

    return database_sync_to_async(publish)


async def test_frames_published_on_the_database_thread_arrive_in_order(db_thread_publish):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("conv.order-test", channel)
    events.attach(asyncio.get_running_loop())
    frames = [("conv.order-test", {"type": "n", "n": n}) for n in range(50)]
    await db_thread_publish(frames)
    got = [(await layer.receive(channel))["frame"]["n"] for _ in frames]
    assert got == list(range(50))
    await layer.group_discard("conv.order-test", channel)


async def test_a_full_outbox_is_a_failed_publish(db_thread_publish, monkeypatch, caplog):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("conv.full-test", channel)
    events.attach(asyncio.get_running_loop())
    monkeypatch.setattr(events, "_OUTBOX_LIMIT", 0)
    before = layerwatch._publish_failures
    with caplog.at_level(logging.ERROR, logger="chat.events"):
        await db_thread_publish([("conv.full-test", {"type": "secret", "text": "hemmelig"})])
        await asyncio.sleep(0.05)  # the hand-over to the loop runs
    assert layerwatch._publish_failures == before + 1
    assert "publish to conv failed (secret): OutboxFull" in caplog.text
    assert "hemmelig" not in caplog.text and "full-test" not in caplog.text  # no content, no id
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)
    await layer.group_discard("conv.full-test", channel)


async def test_the_database_thread_does_not_wait_for_redis(db_thread_publish, monkeypatch):
    """The publishing thread returns while Redis has not taken the frames yet; they leave
    afterwards, in order."""
    events.attach(asyncio.get_running_loop())
    release, sent = asyncio.Event(), []

    async def slow_publish(group, frame):
        await release.wait()
        sent.append(frame["n"])

    monkeypatch.setattr(events, "_publish", slow_publish)
    frames = [("conv.slow-test", {"type": "n", "n": n}) for n in range(3)]
    await asyncio.wait_for(db_thread_publish(frames), 2)  # would hang waiting for Redis
    assert sent == []
    release.set()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert sent == [0, 1, 2]
