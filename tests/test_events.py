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
    assert "conv.full-test" in caplog.text and "hemmelig" not in caplog.text  # no content
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)
    await layer.group_discard("conv.full-test", channel)
