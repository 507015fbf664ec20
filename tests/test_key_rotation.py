"""Rotating the master key (docs/operations.md § Rotate keys): prepend a new key, run
`manage.py rewrap_keys`, drop the old key; every message and handover stays readable, and a
destroyed key stays destroyed."""

import io

import pytest
from django.core.management import call_command

from chat import selectors as chat_selectors
from chat.actors import Actor
from chat.models import ConversationKey
from dropin import services as queue
from tests.test_chat_services import send
from tests.test_handover import SUMMARY
from youthhub import crypto
from youthhub.crypto import DecryptionError
from youthhub.handover import selectors as handover_selectors
from youthhub.handover import services as handover_services
from youthhub.handover.models import Consultation, HandoverKey

OLD = crypto.generate_master_key_entry("k1")
NEW = crypto.generate_master_key_entry("k9")


def rewrap(*args) -> str:
    out = io.StringIO()
    call_command("rewrap_keys", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def written_under_old_key(settings, make_youth, ingrid):
    """Two chats (one already past retention: its key destroyed), a handover draft and an
    anonymous consultation, all under the old master key."""
    settings.YOUTHHUB_DATA_KEYS = OLD
    handover_services.service_directory_seed()
    chats = []
    for text in ("første", "andre"):
        youth, _ = make_youth()
        conversation = queue.queue_request(youth=youth, target="any")
        conversation = queue.queue_accept(user=ingrid, conversation_id=conversation.id)
        send(Actor.for_youth(youth), conversation, text, "c1")
        chats.append(conversation)
    ConversationKey.objects.filter(conversation=chats[1]).update(wrapped=None)  # purged
    handover = handover_services.handover_draft(
        user=ingrid,
        conversation_id=chats[0].id,
        service="bup-vestfold",
        reach="contact",
        summary=SUMMARY,
    )
    handover_services.consultation_ask(
        user=ingrid, service="bup-vestfold", question="Hva gjør vi når en 15-åring …?"
    )
    return chats, handover


def question() -> str:
    consultation = Consultation.objects.get()
    key = handover_selectors.consultation_key(consultation)
    return handover_selectors.consultation_view(consultation)["question"] if key else None


def readable(ingrid, conversation, handover) -> tuple[list, dict | None]:
    frames, _ = chat_selectors.history(
        Actor.for_staff(ingrid), str(conversation.id), after_seq=0, limit=10
    )
    key = handover_selectors.data_key(handover.id)
    return [f["text"] for f in frames], handover_selectors.summary_of(handover, key)


@pytest.mark.django_db
def test_rotation_keeps_everything_readable_without_the_old_key(
    settings, ingrid, written_under_old_key
):
    (chat, purged), handover = written_under_old_key
    before = readable(ingrid, chat, handover)
    assert before[0] == ["første"] and before[1]["concern"] == SUMMARY["concern"]
    sealed = bytes(chat.messages.get().body)

    settings.YOUTHHUB_DATA_KEYS = f"{NEW},{OLD}"
    assert "3 data keys still need an older master key" in rewrap("--check")
    assert (
        ConversationKey.objects.get(conversation=chat).master_key_id == "k1"
    )  # --check: no change

    out = rewrap()
    assert "chat.ConversationKey: 1 re-wrapped under k9" in out
    assert "handover.HandoverKey: 1 re-wrapped under k9" in out
    assert "handover.Consultation: 1 re-wrapped under k9" in out
    assert "older master keys may be removed" in out
    assert bytes(chat.messages.get().body) == sealed  # content is not re-encrypted
    assert rewrap().count(" 0 re-wrapped") == 3  # a second run finds nothing to do

    settings.YOUTHHUB_DATA_KEYS = NEW  # the old master key is gone
    assert readable(ingrid, chat, handover) == before
    assert question() == "Hva gjør vi når en 15-åring …?"
    # What retention destroyed stays destroyed: no key, no text.
    assert ConversationKey.objects.get(conversation=purged).wrapped is None
    assert readable(ingrid, purged, handover)[0] == [None]


@pytest.mark.django_db
def test_without_rewrap_the_old_key_is_still_needed(settings, ingrid, written_under_old_key):
    (chat, _), handover = written_under_old_key
    settings.YOUTHHUB_DATA_KEYS = NEW
    with pytest.raises(DecryptionError):
        readable(ingrid, chat, handover)
    assert HandoverKey.objects.get(handover=handover).master_key_id == "k1"
    with pytest.raises(DecryptionError):
        question()
