"""Races on real PostgreSQL with real threads (each has its own database connection)."""

import threading

import pytest
from django.db import connection

from chat import services
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import Conversation, Message
from dropin import services as queue
from tests.conftest import put_on_duty

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def run_together(*calls):
    """Run the calls in threads released at the same instant; return results or errors."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except ServiceError as exc:
            results[i] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


ROUNDS = 200


@pytest.fixture(autouse=True)
def _many_youth(settings):
    settings.YOUTHHUB_SESSIONS_PER_MINUTE = 10 * ROUNDS  # every round starts new youth


def test_two_staff_accepting_at_once_have_exactly_one_winner(make_youth, ingrid, sara):
    assert connection.vendor == "postgresql"
    for _ in range(ROUNDS):
        youth, _ = make_youth()
        conversation = queue.queue_request(youth=youth, target="any")
        results = run_together(
            lambda: queue.queue_accept(user=ingrid, conversation_id=conversation.id),
            lambda: queue.queue_accept(user=sara, conversation_id=conversation.id),
        )
        winners = [r for r in results if isinstance(r, Conversation)]
        assert len(winners) == 1 and results.count("conflict") == 1, results
        services.conversation_end(
            actor=Actor.for_staff(winners[0].assigned_staff), conversation_id=conversation.id
        )


def test_two_staff_claiming_next_at_once_never_share_a_youth(make_youth, arena, make_staff):
    """Both press "take next" with one youth waiting: one gets them, the other hears the
    queue is empty. With two waiting, each gets a different one."""
    ingrid = put_on_duty(make_staff("ingrid", "psychologist"), arena)
    sara = put_on_duty(make_staff("sara", "health_nurse"), arena)
    for round_ in range(ROUNDS):
        waiting = [queue.queue_request(youth=make_youth()[0]) for _ in range(1 + round_ % 2)]
        results = run_together(
            lambda: queue.queue_claim_next(user=ingrid),
            lambda: queue.queue_claim_next(user=sara),
        )
        taken = [r.id for r in results if isinstance(r, Conversation)]
        assert len(taken) == len(waiting) == len(set(taken)), results
        assert results.count("queue_empty") == 2 - len(waiting), results
        for conversation in Conversation.objects.filter(id__in=taken).select_related(
            "assigned_staff"
        ):
            services.conversation_end(
                actor=Actor.for_staff(conversation.assigned_staff), conversation_id=conversation.id
            )


def test_concurrent_sends_get_unique_consecutive_seqs(make_youth, ingrid):
    youth, _ = make_youth()
    conversation = queue.queue_request(youth=youth, target="any")
    queue.queue_accept(user=ingrid, conversation_id=conversation.id)
    me, staff = Actor.for_youth(youth), Actor.for_staff(ingrid)
    calls = []
    for i in range(8):
        actor = me if i % 2 else staff
        calls.append(
            lambda a=actor, i=i: services.message_send(
                actor=a, conversation_id=conversation.id, client_id=f"c{i}", text=f"m{i}"
            )
        )
    # The same client_id twice at once: stored once.
    calls.append(
        lambda: services.message_send(
            actor=me, conversation_id=conversation.id, client_id="dup", text="once"
        )
    )
    calls.append(
        lambda: services.message_send(
            actor=me, conversation_id=conversation.id, client_id="dup", text="once"
        )
    )
    run_together(*calls)
    seqs = sorted(Message.objects.filter(conversation=conversation).values_list("seq", flat=True))
    assert seqs == list(range(1, 10))
    assert Message.objects.filter(client_id="dup").count() == 1
