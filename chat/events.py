"""The only code that touches the channel layer. Only services call it.

The channel layer is a doorbell, not a record: it is at-most-once, and Redis may be down.
Every frame published here describes a row already committed to the database, so a client
that misses one gets it back from the database (`hello.last_seq` / `sync`), and a failed
publish is logged (without content) and never undoes the write. A failed publish also tells
chat.layerwatch, which has every socket reconnect and catch up once the layer works again
(nothing else would bring the lost frame to a page if the chat goes quiet).
"""

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


def _send(group: str, frame: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": "deliver", "frame": frame})
    except Exception as exc:
        # Content never goes to the log: only the group and the frame type.
        logger.error("publish to %s failed (%s): %s", group, frame.get("type"), type(exc).__name__)
        # The frame is lost for everyone listening: once the layer works again, the sockets
        # reconnect and catch up from the database (chat.layerwatch).
        layerwatch.publish_failed()
