"""After-commit fan-out of queue changes (every publish goes through chat.events).

One change of the queue (a request, a changed choice, a crisis flag, an accept, an end, a
staff status) sends the whole queue once to the staff group (each staff consumer filters and
orders it for its person: `selectors.personalise`) and a fresh `queued` frame to every
waiting youth; a youth's socket drops a frame identical to the last one it sent.
"""

from chat import events

from . import selectors


def queue_changed() -> None:
    def build():
        state = selectors.queue_state()
        items = [
            (events.STAFF_QUEUE, {"type": "queue.update", "queue": selectors.staff_queue(state)})
        ]
        schedules: dict = {}
        for entry in state.entries:
            frame = selectors.queued_frame(entry, state, schedules)
            items.append((events.conversation_group(entry.id), frame))
        return items

    events.publish_many_on_commit(build)


def crisis_alert(conversation) -> None:
    """Every staff member serving this youth's queue, the assigned one and all supervisors
    (each staff socket passes it on if `selectors.alert_concerns` says so)."""
    events.publish_on_commit(events.STAFF_QUEUE, crisis_alert_frame(conversation))


def crisis_alert_frame(conversation) -> dict:
    return {
        "type": "crisis.alert",
        "conversation_id": str(conversation.id),
        "alias": conversation.youth.alias,
        "ticket": conversation.ticket or None,
        "state": conversation.state,
        "crisis": True,
        "channel": conversation.channel,
        "pool_id": conversation.pool_id,
        "site_id": conversation.site_id,
        "assigned_staff_id": conversation.assigned_staff_id,
        "crisis_at": conversation.crisis_at.isoformat(),
    }
