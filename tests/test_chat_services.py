"""Every chat action on the database, without sockets."""

import pytest
from django.db import connection

from chat import selectors, services
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import Conversation, Message
from dropin import services as queue


@pytest.fixture
def queued(make_youth):
    youth, _ = make_youth()
    return youth, queue.queue_request(youth=youth, target="any")


@pytest.fixture
def active(queued, ingrid):
    youth, conversation = queued
    queue.queue_accept(user=ingrid, conversation_id=conversation.id)
    conversation.refresh_from_db()
    return youth, conversation


def send(actor, conversation, text, client_id):
    return services.message_send(
        actor=actor, conversation_id=conversation.id, client_id=client_id, text=text
    )


def error_code(fn, *args, **kwargs) -> str:
    with pytest.raises(ServiceError) as exc:
        fn(*args, **kwargs)
    return exc.value.code


@pytest.mark.django_db
def test_request_queues_the_youth_once(make_youth):
    youth, _ = make_youth()
    conversation = queue.queue_request(youth=youth, target="any")
    assert conversation.state == "queued"
    assert error_code(queue.queue_request, youth=youth, target="any") == "already_queued"
    assert Conversation.objects.count() == 1


@pytest.mark.django_db
def test_accept_assigns_exactly_once(queued, ingrid, sara):
    _, conversation = queued
    queue.queue_accept(user=ingrid, conversation_id=conversation.id)
    assert error_code(queue.queue_accept, user=sara, conversation_id=conversation.id) == (
        "conflict"
    )
    conversation.refresh_from_db()
    assert conversation.state == "active" and conversation.assigned_staff == ingrid


@pytest.mark.django_db
def test_accept_rejects_unknown_ids_non_staff_and_full_capacity(
    queued, make_youth, make_staff, django_user_model
):
    _, conversation = queued
    nobody = django_user_model.objects.create_user("nobody", password="x")
    assert (
        error_code(queue.queue_accept, user=nobody, conversation_id=conversation.id)
        == "not_allowed"
    )
    busy = make_staff("busy", "volunteer")
    busy.staff_profile.capacity = 0
    busy.staff_profile.save()
    assert (
        error_code(queue.queue_accept, user=busy, conversation_id=conversation.id) == "at_capacity"
    )
    ingrid = make_staff("ingrid")
    for bad_id in ["00000000-0000-0000-0000-000000000000", "not-a-uuid"]:
        assert error_code(queue.queue_accept, user=ingrid, conversation_id=bad_id) == "not_found"
    conversation.refresh_from_db()
    assert conversation.state == "queued"


@pytest.mark.django_db
def test_messages_get_consecutive_seqs_and_client_id_makes_sends_idempotent(active, ingrid):
    youth, conversation = active
    me, staff = Actor.for_youth(youth), Actor.for_staff(ingrid)
    first, created = send(me, conversation, "hei", "c1")
    assert created and first["seq"] == 1
    again, created = send(me, conversation, "hei", "c1")
    assert not created and again == first
    reply, _ = send(staff, conversation, "Hei! Hva tenker du på?", "c1")  # same id, other sender
    assert reply["seq"] == 2 and reply["sender"] == "staff" and reply["sender_name"] == "Ingrid"
    assert Message.objects.filter(conversation=conversation).count() == 2
    conversation.refresh_from_db()
    assert conversation.next_seq == 3


@pytest.mark.django_db
def test_youth_may_write_while_waiting(queued):
    youth, conversation = queued
    frame, _ = send(Actor.for_youth(youth), conversation, "Jeg vil snakke om skolen", "w1")
    assert frame["seq"] == 1


@pytest.mark.django_db
def test_bad_messages_change_nothing(active, sara, make_youth, settings):
    youth, conversation = active
    me = Actor.for_youth(youth)
    other_youth, _ = make_youth()
    assert (
        error_code(send, me, conversation, "x" * (settings.YOUTHHUB_MAX_MESSAGE_CHARS + 1), "long")
        == "too_long"
    )
    assert error_code(send, me, conversation, "   \n", "blank") == "empty"
    assert error_code(send, Actor.for_staff(sara), conversation, "hi", "s") == "not_allowed"
    assert error_code(send, Actor.for_youth(other_youth), conversation, "hi", "o") == "not_allowed"
    services.conversation_end(actor=me, conversation_id=conversation.id)
    assert error_code(send, me, conversation, "hallo?", "late") == "closed"
    conversation.refresh_from_db()
    assert Message.objects.count() == 0 and conversation.next_seq == 1


@pytest.mark.django_db
def test_exactly_the_limit_is_allowed(active, settings):
    youth, conversation = active
    frame, _ = send(
        Actor.for_youth(youth), conversation, "æ" * settings.YOUTHHUB_MAX_MESSAGE_CHARS, "max"
    )
    assert len(frame["text"]) == settings.YOUTHHUB_MAX_MESSAGE_CHARS


@pytest.mark.django_db
def test_read_marks_only_move_forward_within_the_conversation(active, ingrid):
    youth, conversation = active
    me = Actor.for_youth(youth)
    send(Actor.for_staff(ingrid), conversation, "a", "1")
    send(Actor.for_staff(ingrid), conversation, "b", "2")
    assert services.conversation_mark_read(actor=me, conversation_id=conversation.id, seq=2) == 2
    assert services.conversation_mark_read(actor=me, conversation_id=conversation.id, seq=1) == 2
    assert (
        error_code(
            services.conversation_mark_read, actor=me, conversation_id=conversation.id, seq=3
        )
        == "bad_seq"
    )
    conversation.refresh_from_db()
    assert (conversation.youth_read_seq, conversation.staff_read_seq) == (2, 0)


@pytest.mark.django_db
def test_ending_a_queued_request_abandons_it_and_a_new_one_can_start(queued):
    youth, conversation = queued
    ended = services.conversation_end(actor=Actor.for_youth(youth), conversation_id=conversation.id)
    assert ended.state == "abandoned" and ended.ended_at is not None
    assert (
        error_code(
            services.conversation_end, actor=Actor.for_youth(youth), conversation_id=conversation.id
        )
        == "closed"
    )
    again = queue.queue_request(youth=youth, target="any")
    assert again.id != conversation.id


@pytest.mark.django_db
def test_no_message_text_is_stored_in_plaintext(active, ingrid):
    youth, conversation = active
    secret = "Mamma vet ikke at jeg har det vondt"
    send(Actor.for_youth(youth), conversation, secret, "p1")
    send(Actor.for_staff(ingrid), conversation, "Takk for at du forteller det", "p2")
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                dump = " ".join(
                    bytes(v).decode("utf-8", "replace")
                    if isinstance(v, (bytes, memoryview))
                    else str(v)
                    for v in row
                )
                assert "vondt" not in dump and "forteller" not in dump, table


@pytest.mark.django_db
def test_destroying_the_data_key_makes_content_unreadable(active, ingrid):
    youth, conversation = active
    send(Actor.for_youth(youth), conversation, "hemmelig", "d1")
    services.conversation_destroy_content(conversation=conversation)
    frames, latest = selectors.history(Actor.for_youth(youth), conversation.id, after_seq=0)
    assert latest == 1 and frames[0]["text"] is None
    assert Message.objects.get().body  # the ciphertext is still there, and useless


@pytest.mark.django_db
def test_history_is_only_for_participants(active, sara):
    _, conversation = active
    assert error_code(selectors.history, Actor.for_staff(sara), conversation.id, after_seq=0) == (
        "not_allowed"
    )


@pytest.mark.django_db(transaction=True)
def test_a_failed_publish_never_undoes_the_write(active, settings, caplog):
    """Redis down: the message is still committed (clients catch up from the database)."""
    youth, conversation = active
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    frame, created = send(Actor.for_youth(youth), conversation, "kommer dette fram?", "f1")
    assert created and frame["seq"] == 1
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert "publish to conv failed (message)" in caplog.text
    assert "kommer" not in caplog.text and str(conversation.id.hex) not in caplog.text
