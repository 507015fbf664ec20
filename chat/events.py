"""The only code that touches the channel layer. Only services call it (and sockets relaying
their own typing indicator, which nothing stores: `publish_now`).

The channel layer is a doorbell, not a record: it is at-most-once, and Redis may be down.
Every frame published here describes a row already committed to the database, so a client
that misses one gets it back from the database (`hello.last_seq` / `sync`), and a failed
publish is logged (without content) and never undoes the write. A failed publish also tells
chat.layerwatch, which has every socket reconnect and catch up once the layer works again
(nothing else would bring the lost frame to a page if the chat goes quiet).
"""

import asyncio
import logging
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from . import layerwatch

logger = logging.getLogger(__name__)

# Group names (ASCII, < 100 chars, as channels requires).
STAFF_QUEUE = "staff.queue"


def conversation_group(conversation_id) -> str:
    return f"conv.{uuid.UUID(str(conversation_id)).hex}"


def conversation_staff_group(conversation_id) -> str:
    """Staff-only frames about a conversation (internal notes): no youth socket joins it."""
    return f"convstaff.{uuid.UUID(str(conversation_id)).hex}"


def youth_group(youth_id) -> str:
    return f"youth.{uuid.UUID(str(youth_id)).hex}"


def staff_user_group(user_id: int) -> str:
    return f"staffuser.{user_id}"


def publish_on_commit(group: str, frame: dict) -> None:
    """Send `frame` to `group` once the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(group, frame))


def publish_many_on_commit(build: Callable[[], list[tuple[str, dict]]]) -> None:
    """After commit, call `build()` for a list of (group, frame) and send each."""

    def run():
        try:
            items = build()
        except Exception:
            logger.exception("building events failed")
            return
        for group, frame in items:
            _send(group, frame)

    transaction.on_commit(run)


# Publishing from a worker's database thread hands the frame to the event loop and returns at
# once: the thread does not wait for Redis (async_to_sync would, per frame). One task per loop
# sends them in the order they were published. Without a running loop (commands, sync
# tests), a publish is sent before the call returns.
_OUTBOX_LIMIT = 10_000  # frames waiting for Redis; past it they are dropped as failed sends
_outbox: tuple[asyncio.AbstractEventLoop, asyncio.Queue, asyncio.Task] | None = None


def attach(loop: asyncio.AbstractEventLoop) -> None:
    """Publish through `loop` from now on (a consumer calls this on connect, in the loop)."""
    global _outbox
    if _outbox is None or _outbox[0] is not loop or _outbox[2].done():
        queue: asyncio.Queue = _outbox[1] if _outbox and _outbox[0] is loop else asyncio.Queue()
        task = loop.create_task(_drain(queue), name="chat.events outbox")
        _outbox = (loop, queue, task)


async def _drain(queue: asyncio.Queue) -> None:
    try:
        while True:
            group, frame = await queue.get()
            await _publish(group, frame)
    finally:
        # The worker is stopping (or this task failed): what is still queued will not be sent.
        # Counted as failed publishes, so the sockets left catch up (chat.layerwatch).
        while not queue.empty():
            group, frame = queue.get_nowait()
            _failed(group, frame, "WorkerStopping")


def _enqueue(queue: asyncio.Queue, item: tuple[str, dict]) -> None:
    if queue.qsize() >= _OUTBOX_LIMIT:
        _failed(item[0], item[1], "OutboxFull")
        return
    queue.put_nowait(item)


def _send(group: str, frame: dict) -> None:
    outbox = _outbox
    if outbox is not None and outbox[0].is_running():
        try:
            outbox[0].call_soon_threadsafe(_enqueue, outbox[1], (group, frame))
            return
        except RuntimeError:  # the loop closed meanwhile
            pass
    async_to_sync(_publish)(group, frame)


async def publish_now(group: str, frame: dict) -> None:
    """From the event loop, for what is stored nowhere: a socket relaying its own typing
    indicator for a conversation it has checked (chat.consumers.on_typing)."""
    await _publish(group, frame)


async def _publish(group: str, frame: dict) -> None:
    try:
        await get_channel_layer().group_send(group, {"type": "deliver", "frame": frame})
    except Exception as exc:
        _failed(group, frame, type(exc).__name__)


def _failed(group: str, frame: dict, why: str) -> None:
    # Content never goes to the log, nor whose it is: only the kind of group ("conv",
    # "youth" ..., not the id after the dot) and the frame type.
    logger.error("publish to %s failed (%s): %s", group.split(".")[0], frame.get("type"), why)
    # The frame is lost for everyone listening: once the layer works again, the sockets
    # reconnect and catch up from the database (chat.layerwatch).
    layerwatch.publish_failed()
