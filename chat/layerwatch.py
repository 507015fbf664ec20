"""Notices when this worker's channel layer may have lost events, and makes its sockets catch up.

The channel layer is at-most-once (chat/events.py): a socket that misses one message learns of
it from the next one (a seq gap, filled from the database). That is not enough when Redis
restarts or cannot be reached for a moment:

- everything published meanwhile is gone, the last message before a quiet spell included, and
  nothing ever arrives to reveal the gap (nor the lost `assigned`, `ended` or `queue.update`);
- RedisPubSubChannelLayer subscribes again by itself (redis-py) but says nothing about it
  (channels_redis 4.3 accepts `on_disconnect` / `on_reconnect` and never calls them);
- RedisChannelLayer (`YOUTHHUB_CHANNEL_LAYER=core`) keeps group memberships in Redis: a Redis
  that comes back empty has forgotten every group, and open sockets stay open and hear nothing.

So every worker sends itself a numbered heartbeat through the layer every
YOUTHHUB_LAYER_HEARTBEAT_MS (on a group of its own, joined again before each beat, so a Redis
that forgot it is told again). Trouble is: a beat number missing, a send or receive failing, a
publish failing in chat.events here, or another worker announcing that one of its publishes
failed. Once a beat sent after the trouble has come back, the layer works again: every socket of
this worker is closed with CLOSE_RECONNECT, and the clients reconnect at once with their
`last_seq`, get what they missed from the database, and join their groups afresh
(docs/protocol.md, "Connection life"). A worker whose own publish failed tells the others too
(with the time of its last failed publish: a worker that recovered after that has nothing
more to do).

A beat that arrives late (a busy worker) is not trouble: only a missing number is.

A restart of Redis is trouble too, seen by its `run_id` (checked before each beat): the beat
joins its group again before it is sent, and that join restores a subscription the restart
had dropped, so the beat itself can arrive whole while another worker's message, published
on the fresh Redis before this worker subscribed again, was lost (the fault tests saw it: a
youth's message reached the staff page only with the next one).
"""

import asyncio
import logging
import time
import uuid
import weakref

import redis.asyncio
from channels.layers import get_channel_layer
from django.conf import settings

from youthhub import metrics

logger = logging.getLogger(__name__)

# "Reconnect now and catch up": the application range (Daphne sends only 1000 or 3000-4999).
CLOSE_RECONNECT = 4012
ANNOUNCE_GROUP = "layerwatch.announce"  # every worker's watch listens here

# Counted by chat.events (from any thread): how many publishes failed, the last one when.
_publish_failures = 0
_last_failure = 0.0  # time.time()
_watches: dict[int, "LayerWatch"] = {}  # one per event loop
# Clocks of several hosts differ a little: an announcement is ignored only by a worker that
# recovered at least this long after the announcer's last failed publish.
CLOCK_MARGIN = 0.5


def publish_failed() -> None:
    """chat.events could not publish: an event is lost; the sockets must catch up."""
    global _publish_failures, _last_failure
    _last_failure = time.time()
    _publish_failures += 1


def ensure_started() -> "LayerWatch | None":
    interval = settings.YOUTHHUB_LAYER_HEARTBEAT_MS / 1000
    if interval <= 0:
        return None
    loop = asyncio.get_running_loop()
    watch = _watches.get(id(loop))
    if watch is None or watch.task is None or watch.task.done():
        old = watch
        watch = LayerWatch(get_channel_layer(), interval)
        if old is not None:
            old.stop()
            watch.sockets.update(old.sockets)
        watch.task = loop.create_task(watch.run(), name="layerwatch")
        _watches[id(loop)] = watch
    return watch


def register(consumer) -> None:
    """A socket to close when the layer comes back after trouble (see `Consumer.reconnect`)."""
    watch = ensure_started()
    if watch is not None:
        watch.sockets.add(consumer)


def unregister(consumer) -> None:
    watch = _watches.get(id(asyncio.get_running_loop()))
    if watch is not None:
        watch.sockets.discard(consumer)


class RedisServers:
    """The run_id of each Redis server the channel layer uses: a new one means it restarted
    (or another server took over) and dropped every subscription for a moment."""

    def __init__(self, urls: list[str]):
        self.clients = {url: redis.asyncio.Redis.from_url(url, socket_timeout=2) for url in urls}

    @classmethod
    def of_the_layer(cls) -> "RedisServers":
        config = settings.CHANNEL_LAYERS["default"]
        hosts = (
            config.get("CONFIG", {}).get("hosts", [])
            if "channels_redis" in config["BACKEND"]
            else []
        )
        return cls([host["address"] if isinstance(host, dict) else host for host in hosts])

    async def __call__(self) -> dict[str, str]:
        return {
            url: (await client.info("server"))["run_id"] for url, client in self.clients.items()
        }


class LayerWatch:
    def __init__(self, layer, interval: float, servers=None):
        self.layer = layer
        self.interval = interval
        # () -> {server: run_id}; a changed run_id is trouble (see the module's docstring).
        self.servers = servers if servers is not None else RedisServers.of_the_layer()
        self.run_ids: dict[str, str] = {}
        self.group = f"layerwatch.{uuid.uuid4().hex}"  # this worker's heartbeat
        self.channel: str | None = None
        self.sockets: weakref.WeakSet = weakref.WeakSet()
        self.task: asyncio.Task | None = None
        self.receiver: asyncio.Task | None = None
        self.sent = 0  # the last beat number sent (or tried)
        self.seen = 0  # the highest beat number received
        self.trouble_since: float | None = None
        self.trouble_at_beat = 0  # a beat numbered above this proves the layer works again
        self.announce = False  # a publish of ours failed: tell the other workers
        self.failures_seen = _publish_failures
        self.recoveries = 0
        self.recovered_at = 0.0  # time.time() of the last recovery

    def stop(self) -> None:
        for task in (self.task, self.receiver):
            if task is not None:
                task.cancel()

    async def run(self) -> None:
        while True:
            await self.beat()
            try:
                self.recover_if_working()
            except Exception:  # the watch must outlive any one bad round
                logger.exception("layer watch round failed")
            await asyncio.sleep(self.interval)

    async def beat(self) -> None:
        if _publish_failures != self.failures_seen:
            self.failures_seen = _publish_failures
            self.announce = True
            self.trouble("a publish failed")
        try:
            for server, run_id in (await self.servers()).items():
                known, self.run_ids[server] = self.run_ids.get(server), run_id
                if known is not None and known != run_id:
                    self.trouble("Redis restarted")
            if self.channel is None:
                self.channel = await self.layer.new_channel()
            await self.layer.group_add(self.group, self.channel)
            await self.layer.group_add(ANNOUNCE_GROUP, self.channel)
            if self.receiver is None or self.receiver.done():
                self.receiver = asyncio.get_running_loop().create_task(self.receive())
            self.sent += 1
            await self.layer.group_send(self.group, {"type": "layerwatch.beat", "n": self.sent})
        except Exception as exc:
            self.trouble(type(exc).__name__)

    async def receive(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.trouble(type(exc).__name__)
                await asyncio.sleep(self.interval)
                continue
            if message.get("type") == "layerwatch.beat":
                number = message["n"]
                if number > self.seen + 1:
                    self.trouble(f"{number - self.seen - 1} heartbeats lost")
                self.seen = max(self.seen, number)
            elif message.get("type") == "layerwatch.announce" and message["by"] != self.group:
                # Another worker's publishes failed until `until`. Sockets that said hello
                # after that got those messages from the database: if this worker's sockets
                # were all told to reconnect after it, nothing more is needed.
                if self.recovered_at < message["until"] + CLOCK_MARGIN:
                    self.trouble("another worker could not publish")

    def trouble(self, why: str) -> None:
        """Events may have been lost from now on; mark the beat that must come back."""
        if self.trouble_since is None:
            self.trouble_since = time.monotonic()
            logger.warning(
                "channel layer trouble (%s): the sockets of this worker reconnect once it "
                "works again",
                why,
            )
        self.trouble_at_beat = self.sent

    def recover_if_working(self) -> None:
        if self.trouble_since is None or self.seen <= self.trouble_at_beat:
            return
        lasted = time.monotonic() - self.trouble_since
        self.trouble_since = None
        self.recoveries += 1
        self.recovered_at = time.time()
        sockets = list(self.sockets)
        logger.warning(
            "channel layer works again after %.1fs: %d sockets reconnect to catch up",
            lasted,
            len(sockets),
        )
        metrics.layer_recovered(len(sockets))
        loop = asyncio.get_running_loop()
        for consumer in sockets:
            loop.create_task(consumer.reconnect())
        if self.announce:
            self.announce = False
            loop.create_task(self.tell_the_others())

    async def tell_the_others(self) -> None:
        try:
            await self.layer.group_send(
                ANNOUNCE_GROUP,
                {"type": "layerwatch.announce", "by": self.group, "until": _last_failure},
            )
        except Exception as exc:
            self.announce = True  # try again after the next recovery
            self.trouble(type(exc).__name__)
