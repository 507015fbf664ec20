"""When Redis restarts or cannot be reached (docs/faults.md): the channel-layer watch
(chat/layerwatch.py) has a worker's sockets reconnect and catch up once the layer works
again; a socket that cannot join its groups or finish its hello is closed with 4012 instead
of staying open and deaf; a youth may still write while the rate-limit counter is away.

The same faults on the real cluster: tests/test_faults.py."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import layerwatch, selectors, services
from chat.actors import Actor
from chat.errors import ServiceError
from chat.layerwatch import ANNOUNCE_GROUP, CLOSE_RECONNECT, LayerWatch
from tests.conftest import connect, youth_socket

# --- the watch, on a layer that loses what it is told to --------------------------------


class FlakyLayer:
    """In-process groups and channels; `down` makes every call fail, `drop` loses the next
    group_send calls."""

    def __init__(self):
        self.queues: dict[str, asyncio.Queue] = {}
        self.groups: dict[str, set[str]] = {}
        self.down = False
        self.drop = 0
        self.sent: list[tuple[str, dict]] = []

    async def new_channel(self):
        name = f"specific.{len(self.queues)}"
        self.queues[name] = asyncio.Queue()
        return name

    async def group_add(self, group, channel):
        if self.down:
            raise ConnectionError("down")
        self.groups.setdefault(group, set()).add(channel)

    async def group_send(self, group, message):
        if self.down:
            raise ConnectionError("down")
        self.sent.append((group, message))
        if self.drop:
            self.drop -= 1
            return
        for channel in self.groups.get(group, ()):
            self.queues[channel].put_nowait(dict(message))

    async def receive(self, channel):
        return await self.queues[channel].get()


class Socket:
    def __init__(self):
        self.told = 0

    async def reconnect(self):
        self.told += 1


async def tick(*watches: LayerWatch) -> None:
    """One heartbeat of each watch, its delivery, and the check after it."""
    for watch in watches:
        await watch.beat()
    for _ in range(3):
        await asyncio.sleep(0)
    for watch in watches:
        watch.recover_if_working()
    for _ in range(3):
        await asyncio.sleep(0)


async def no_servers() -> dict:
    return {}


def watching(layer, *sockets) -> LayerWatch:
    watch = LayerWatch(layer, interval=0.01, servers=no_servers)
    for socket in sockets:
        watch.sockets.add(socket)
    return watch


@pytest.mark.asyncio
async def test_heartbeats_that_arrive_late_or_in_time_change_nothing():
    layer, socket = FlakyLayer(), Socket()
    watch = watching(layer, socket)
    for _ in range(5):
        await tick(watch)
    await watch.beat()
    await watch.beat()  # two in flight, delivered together later: late, not lost
    await tick(watch)
    assert watch.seen == watch.sent == 8 and watch.trouble_since is None
    assert socket.told == 0
    watch.stop()


@pytest.mark.asyncio
async def test_a_lost_heartbeat_makes_every_socket_reconnect_once_the_layer_works():
    layer, first, second = FlakyLayer(), Socket(), Socket()
    watch = watching(layer, first, second)
    await tick(watch)
    layer.drop = 1  # a subscriber that was away for a moment: this beat is gone
    await tick(watch)
    assert (first.told, second.told) == (0, 0)  # nobody knows yet
    await tick(watch)  # the next one shows the gap ...
    assert watch.trouble_since is not None and first.told == 0
    await tick(watch)  # ... and one sent after it proves the layer works again
    assert (first.told, second.told) == (1, 1) and watch.trouble_since is None
    for _ in range(3):
        await tick(watch)
    assert (first.told, second.told) == (1, 1)
    watch.stop()


@pytest.mark.asyncio
async def test_a_redis_restart_makes_every_socket_reconnect_though_no_beat_was_lost():
    """Redis restarted between two beats and the next beat's join subscribed again before it
    was sent: it arrives, but a message another worker published in between did not."""
    layer, socket = FlakyLayer(), Socket()
    run_id = {"redis://one": "a" * 40}

    async def servers():
        return dict(run_id)

    watch = LayerWatch(layer, interval=0.01, servers=servers)
    watch.sockets.add(socket)
    await tick(watch)
    await tick(watch)
    assert socket.told == 0
    run_id["redis://one"] = "b" * 40
    await tick(watch)
    assert socket.told == 1 and watch.recoveries == 1 and watch.seen == watch.sent
    await tick(watch)
    assert socket.told == 1
    watch.stop()


@pytest.mark.services
@pytest.mark.asyncio
async def test_the_watch_knows_the_run_id_of_the_layers_redis():
    from chat.layerwatch import RedisServers

    servers = RedisServers.of_the_layer()
    first = await servers()
    assert len(first) == 1 and all(len(run_id) == 40 for run_id in first.values())
    assert await servers() == first  # the same server, not restarted


@pytest.mark.asyncio
async def test_while_redis_is_away_nobody_is_told_to_reconnect_into_it():
    layer, socket = FlakyLayer(), Socket()
    watch = watching(layer, socket)
    await tick(watch)
    layer.down = True
    for _ in range(5):
        await tick(watch)
    assert watch.trouble_since is not None and socket.told == 0
    layer.down = False
    await tick(watch)
    assert socket.told == 1 and watch.recoveries == 1
    watch.stop()


@pytest.mark.asyncio
async def test_a_failed_publish_reaches_the_sockets_of_every_worker():
    layer = FlakyLayer()
    here, there, late = Socket(), Socket(), Socket()
    publisher = watching(layer, here)
    other = watching(layer, there)
    await tick(publisher, other)
    layerwatch.publish_failed()  # chat.events on the publisher's worker
    other.failures_seen = layerwatch._publish_failures  # another process: it did not see it
    await tick(publisher, other)
    await tick(publisher, other)
    assert here.told == 1  # the publisher's own sockets
    announced = [m for g, m in layer.sent if g == ANNOUNCE_GROUP]
    assert announced and announced[0]["by"] == publisher.group
    await tick(publisher, other)  # the other worker heard it, and its layer works
    await tick(publisher, other)
    assert there.told == 1 and here.told == 1  # the announcer ignores its own news

    # A worker that recovered after the announcer's last failed publish has nothing to do:
    # its sockets said hello after those messages were in the database.
    third = watching(layer, late)
    third.recovered_at = announced[0]["until"] + 5
    await tick(third)
    layer.groups[ANNOUNCE_GROUP].discard(other.channel)
    await layer.group_send(ANNOUNCE_GROUP, announced[0])
    await tick(third)
    await tick(third)
    assert late.told == 0
    for watch in (publisher, other, third):
        watch.stop()


# --- the consumers --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_sockets_reconnect_after_a_failed_publish(make_youth, settings):
    settings.YOUTHHUB_LAYER_HEARTBEAT_MS = 20
    _, token = await database_sync_to_async(make_youth)()
    ws, _ = await youth_socket(token)
    watch = layerwatch.ensure_started()
    try:
        await asyncio.sleep(0.1)  # the heartbeat runs
        assert watch.trouble_since is None
        layerwatch.publish_failed()
        closed = await ws.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": CLOSE_RECONNECT}
    finally:
        watch.stop()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_a_hello_that_fails_on_our_side_closes_the_socket(make_youth, monkeypatch):
    _, token = await database_sync_to_async(make_youth)()

    def broken(youth):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(selectors, "youth_open_conversation", broken)
    ws = await connect("/ws/youth/")
    await ws.send_json_to({"type": "hello", "token": token})
    assert (await ws.receive_json_from())["code"] == "internal"
    # No welcome will come: the page must not wait on an open socket.
    assert await ws.receive_output() == {"type": "websocket.close", "code": CLOSE_RECONNECT}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_a_socket_that_cannot_join_its_group_closes(make_youth, monkeypatch):
    _, token = await database_sync_to_async(make_youth)()
    layer = get_channel_layer()
    original = layer.group_add

    async def group_add(group, channel):
        if group.startswith("youth."):
            raise ConnectionError("Redis is restarting")
        return await original(group, channel)

    monkeypatch.setattr(layer, "group_add", group_add)
    ws = await connect("/ws/youth/")
    await ws.send_json_to({"type": "hello", "token": token})
    closed = await ws.receive_output()
    assert closed == {"type": "websocket.close", "code": CLOSE_RECONNECT}


# --- the rate-limit counter away ------------------------------------------------------------


class DeadCache:
    def add(self, *args, **kwargs):
        raise ConnectionError("Redis is restarting")

    incr = get = set = add


def test_a_youth_can_write_while_the_rate_limit_counter_is_away(db, monkeypatch):
    from dropin import services as queue_services

    youth, _ = services.youth_session_create()
    conversation = queue_services.queue_request(youth=youth, target="any")
    monkeypatch.setattr("youthhub.ratelimit.cache", DeadCache())
    frame, created = services.message_send(
        actor=Actor.for_youth(youth),
        conversation_id=conversation.id,
        client_id="while-redis-restarts",
        text="er det noen der?",
    )
    assert created and frame["seq"] == 1
    # Limits that stop guessing do not open up: the request fails instead.
    with pytest.raises(ConnectionError):
        services.youth_resume(return_code="ABCD-EFGH-JKLM")


def test_the_queue_estimate_needs_no_cache(db, monkeypatch):
    from dropin import selectors as queue_selectors

    monkeypatch.setattr(queue_selectors, "cache", DeadCache())
    assert queue_selectors.recent_handle_seconds() > 0


def test_the_message_limit_still_holds_while_the_counter_works(db, monkeypatch):
    """The fail-open counter still counts while it works (the limit holds)."""
    youth, _ = services.youth_session_create()
    from dropin import services as queue_services

    conversation = queue_services.queue_request(youth=youth, target="any")
    monkeypatch.setattr("django.conf.settings.YOUTHHUB_MESSAGES_PER_MINUTE", 1)
    actor = Actor.for_youth(youth)
    services.message_send(actor=actor, conversation_id=conversation.id, client_id="a", text="1")
    with pytest.raises(ServiceError) as refused:
        services.message_send(actor=actor, conversation_id=conversation.id, client_id="b", text="2")
    assert refused.value.code == "rate_limited"
