"""A per-process timer that runs `services.queue_tick` (switch offers, no-shows, capacity
samples) and `handover_tick` (overdue handovers flagged, expired consents ended).

Every Daphne worker runs one; `queue_tick` is a set of conditional writes, so several
workers ticking at once change each row once. Disabled with YOUTHHUB_QUEUE_TICK_SECONDS=0
(the tests call `queue_tick(now=...)` directly). While a simulation replays the past it holds
the timers (`services.timers_hold`), and every worker skips its ticks.
"""

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from youthhub.handover.services import handover_tick

from . import selectors, services

logger = logging.getLogger(__name__)
_tasks: dict[int, asyncio.Task] = {}  # one per event loop


def ensure_started() -> None:
    interval = settings.YOUTHHUB_QUEUE_TICK_SECONDS
    if interval <= 0:
        return
    loop = asyncio.get_running_loop()
    task = _tasks.get(id(loop))
    if task is None or task.done():
        _tasks[id(loop)] = loop.create_task(_run(interval))


def tick() -> bool:
    """One tick of the timers, unless they are held; whether it ran."""
    if selectors.timers_held(now=timezone.now()):
        return False
    services.queue_tick()
    handover_tick()
    return True


async def _run(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await database_sync_to_async(tick)()
        except Exception:
            logger.exception("queue tick failed")
