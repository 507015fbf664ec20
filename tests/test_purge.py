"""Retention (`manage.py purge`, youthhub/retention.py) with the clock moved forward: content
unreadable after YOUTHHUB_RETENTION_DAYS, stale identities gone after YOUTHHUB_IDENTITY_DAYS,
handovers expired, statistics and the audit log untouched, and a second run does nothing."""

import io
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from chat import selectors, services
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import Conversation, ConversationKey, Feedback, Message, Note, Youth
from dropin import services as queue
from tests.conftest import PASSWORD
from tests.test_handover import sent
from tests.test_security_headers import production_env
from youthhub.audit.models import AuditEvent
from youthhub.handover import selectors as handover_selectors
from youthhub.handover import services as handover_services
from youthhub.handover.models import Consent, Consultation, Handover, HandoverKey
from youthhub.retention import purge
from youthhub.stats.models import CapacityHour, CapacitySample, Count

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def say(actor, conversation, text, client_id):
    services.message_send(
        actor=actor, conversation_id=conversation.id, client_id=client_id, text=text
    )


def chat(make_youth, staff) -> tuple[Youth, Conversation]:
    youth, _ = make_youth()
    conversation = queue.queue_request(youth=youth, target="any")
    conversation = queue.queue_accept(user=staff, conversation_id=conversation.id)
    return youth, conversation


def end(staff, conversation, **kwargs) -> Conversation:
    return services.conversation_end(
        actor=Actor.for_staff(staff), conversation_id=conversation.id, **kwargs
    )


def stats() -> tuple[list, list]:
    return (
        sorted(
            Count.objects.values_list(
                "hour", "pool_id", "site_id", "channel", "metric", "key", "value"
            )
        ),
        sorted(CapacityHour.objects.values_list()),
    )


def texts(youth, conversation) -> list:
    frames, _ = selectors.history(Actor.for_youth(youth), conversation.id, after_seq=0)
    return [frame["text"] for frame in frames]


@pytest.fixture
def world(make_youth, ingrid):
    """Five anonymous youth, as the day ends:

    - talked: a chat with messages both ways, an internal note, ended with feedback (text);
    - left: asked, then left the queue (abandoned);
    - waiting: still in the queue (an open conversation);
    - silent: opened the page and nothing more;
    - referred: a chat ended after a handover to BUP the youth said yes to (consent 30 days).
    """
    handover_services.service_directory_seed()
    talked, conversation = chat(make_youth, ingrid)
    as_youth, as_staff = Actor.for_youth(talked), Actor.for_staff(ingrid)
    say(as_youth, conversation, "jeg har det vondt hjemme", "y1")
    say(as_staff, conversation, "takk for at du forteller", "s1")
    services.note_add(
        actor=as_staff, conversation_id=conversation.id, client_id="n1", text="følg opp"
    )
    end(ingrid, conversation, tags=["family"], triage="yellow", feedback=True)
    services.feedback_give(
        youth=talked,
        conversation_id=conversation.id,
        scores={"understood": 5, "useful": 4},
        text="Ingrid var grei",
    )
    left, _ = make_youth()
    gone = queue.queue_request(youth=left, target="any")
    services.conversation_end(actor=Actor.for_youth(left), conversation_id=gone.id)
    waiting, _ = make_youth()
    queue.queue_request(youth=waiting, target="any")
    silent, _ = make_youth()
    referred, handover_chat = chat(make_youth, ingrid)
    handover = sent(ingrid, handover_chat)
    end(ingrid, handover_chat)
    return {
        "talked": (talked, conversation),
        "left": (left, gone),
        "waiting": waiting,
        "silent": silent,
        "referred": (referred, handover),
        "now": timezone.now(),
    }


@pytest.mark.django_db
def test_nothing_is_touched_inside_the_retention_period(world):
    before = stats(), set(AuditEvent.objects.values_list("id", flat=True))
    report = purge(now=world["now"] + 29 * DAY)
    assert not report.changed
    talked, conversation = world["talked"]
    assert texts(talked, conversation) == ["jeg har det vondt hjemme", "takk for at du forteller"]
    assert stats() == before[0]
    # The only thing that happened: BUP's 14 reply days are over, so the handover is overdue.
    assert report.handovers_overdue == 1
    new = AuditEvent.objects.exclude(id__in=before[1])
    assert list(new.values_list("action", flat=True)) == ["handover.overdue"]


@pytest.mark.django_db
def test_after_the_retention_period_content_is_unreadable_and_counts_stay(world, ingrid):
    talked, conversation = world["talked"]
    referred, handover = world["referred"]
    counts_before = stats()
    assert counts_before[0], "the world has statistics to keep"
    audit_before = set(AuditEvent.objects.values_list("id", flat=True))

    report = purge(now=world["now"] + 31 * DAY)

    assert report.handovers_expired == 1  # the consent ran out after 30 days
    assert report.content_destroyed == 3  # talked, left, referred's chat; not the open one
    assert report.conversations_deleted == report.identities_deleted == 0
    assert report.open_older_than_retention == 1  # the waiting youth: reported, kept
    # The content is gone for everyone: history says `text: None`, notes too, and a
    # continuity read by the same staff member is refused.
    assert texts(talked, conversation) == [None, None]
    assert Message.objects.filter(conversation=conversation).count() == 2  # rows stay a while
    assert [n["text"] for n in selectors.notes(conversation)] == [None]
    assert selectors.data_key(conversation.id) is None
    assert Feedback.objects.get(conversation=conversation).understood == 5  # scores stay
    # Every closed conversation lost its key; the open one keeps it.
    assert ConversationKey.objects.filter(wrapped__isnull=False).count() == 1
    assert not ConversationKey.objects.filter(wrapped__isnull=False, conversation__state="ended")
    handover.refresh_from_db()
    assert handover.state == "expired" and handover_selectors.data_key(handover.id) is None
    # Identities stay until they are stale; statistics and the audit log are untouched.
    assert Youth.objects.count() == 5
    assert stats() == counts_before
    after = set(AuditEvent.objects.values_list("id", flat=True))
    assert audit_before < after
    assert list(
        AuditEvent.objects.filter(id__in=after - audit_before).values_list("action", flat=True)
    ) == ["handover.expire", "retention.purge"]
    event = AuditEvent.objects.get(action="retention.purge")
    assert event.actor is None and event.detail["content_destroyed"] == "3"

    # A second run (here, or on another host) finds nothing to do and writes nothing.
    again = purge(now=world["now"] + 31 * DAY)
    assert not again.changed and again.open_older_than_retention == 1
    assert set(AuditEvent.objects.values_list("id", flat=True)) == after


@pytest.mark.django_db
def test_stale_identities_go_with_everything_they_had(world, ingrid):
    talked, conversation = world["talked"]
    waiting = world["waiting"]
    counts_before = stats()
    audit_before = set(AuditEvent.objects.values_list("id", flat=True))
    # Someone who came back a week ago is not stale.
    back, _ = services.youth_session_create()
    Youth.objects.filter(pk=back.pk).update(last_seen_at=world["now"] + 54 * DAY)

    report = purge(now=world["now"] + 61 * DAY)

    assert report.content_destroyed == 3 and report.handovers_expired == 1
    assert report.conversations_deleted == 3  # closed more than 60 days ago
    assert report.identities_deleted == 4  # talked, left, silent, referred
    assert set(Youth.objects.values_list("pk", flat=True)) == {waiting.pk, back.pk}
    assert list(Conversation.objects.values_list("youth_id", "state")) == [(waiting.pk, "queued")]
    for model in (Message, Note, Feedback, Handover, HandoverKey, Consent):
        assert not model.objects.exists(), model
    assert ConversationKey.objects.count() == 1  # the waiting youth's
    assert stats() == counts_before
    assert audit_before < set(AuditEvent.objects.values_list("id", flat=True))
    # The audit log still names the conversation, which now points at nothing.
    assert AuditEvent.objects.filter(conversation_id=conversation.id).exists()
    assert not purge(now=world["now"] + 61 * DAY).changed


@pytest.mark.django_db
def test_a_handover_still_in_force_keeps_its_youth(world, ingrid, settings):
    settings.YOUTHHUB_CONSENT_DAYS = 365
    referred, handover = world["referred"]
    # The consent was given under the 30-day default: make it a year, as it would be now.
    Consent.objects.filter(pk=handover.consent_id).update(expires_at=world["now"] + 365 * DAY)

    report = purge(now=world["now"] + 61 * DAY)

    assert report.handovers_expired == 0
    assert Youth.objects.filter(pk=referred.pk).exists()
    handover.refresh_from_db()
    assert handover.state == "sent" and handover_selectors.data_key(handover.id) is not None
    # Its chat is gone (retention of the conversation), the handover goes on without it.
    assert handover.conversation_id is None
    assert not Conversation.objects.filter(youth=referred).exists()


@pytest.mark.django_db
def test_feedback_text_after_retention_is_refused_calmly(make_youth, ingrid):
    youth, conversation = chat(make_youth, ingrid)
    end(ingrid, conversation, feedback=True)
    Conversation.objects.filter(pk=conversation.pk).update(ended_at=timezone.now() - 31 * DAY)
    assert purge().content_destroyed == 1
    with pytest.raises(ServiceError) as exc:
        services.feedback_give(youth=youth, conversation_id=conversation.id, scores={}, text="takk")
    assert exc.value.code == "closed"
    # Scores alone hold no text: they are still welcome (they count in the statistics).
    services.feedback_give(youth=youth, conversation_id=conversation.id, scores={"form": 3})


@pytest.mark.django_db
def test_dry_run_changes_nothing_and_tells_what_a_run_would_do(world):
    at = (world["now"] + 61 * DAY).isoformat()
    audit_before = AuditEvent.objects.count()
    out = io.StringIO()
    call_command("purge", "--dry-run", "--now", at, stdout=out)
    assert "4  stale anonymous identities deleted" in out.getvalue()
    assert "Nothing was changed." in out.getvalue()
    assert Youth.objects.count() == 5 and AuditEvent.objects.count() == audit_before
    assert ConversationKey.objects.filter(wrapped__isnull=False).count() == 4

    out = io.StringIO()
    call_command("purge", "--now", at, stdout=out)
    assert "4  stale anonymous identities deleted" in out.getvalue()
    assert Youth.objects.count() == 1
    out = io.StringIO()
    call_command("purge", "--now", at, stdout=out)
    assert "Nothing to do." in out.getvalue()


@pytest.mark.django_db
def test_capacity_minute_claims_go_and_the_hourly_figures_stay(arena):
    from youthhub.stats.services import capacity_sample

    start = timezone.now().replace(minute=0, second=0, microsecond=0) - 3 * HOUR
    for minute in range(0, 150, 10):  # 15 minutes sampled over two and a half hours
        assert capacity_sample(start + timedelta(minutes=minute, seconds=7)) == 1
    # The sampler itself forgets claims more than an hour older than the minute it samples.
    claims = sorted(CapacitySample.objects.values_list("minute", flat=True))
    assert claims[0] >= start + timedelta(minutes=140) - HOUR
    hours = list(CapacityHour.objects.order_by("hour").values_list("hour", "minutes"))
    assert hours == [(start, 6), (start + HOUR, 6), (start + 2 * HOUR, 3)]
    # The purge deletes the rest of the claims: as at half past, the last (:20) is over an
    # hour old. (As at the real clock it would be only when the clock is past :20.)
    at = start + 3 * HOUR + timedelta(minutes=30)
    figures = sorted(CapacityHour.objects.values_list())
    out = io.StringIO()
    call_command("purge", "--dry-run", "--now", at.isoformat(), stdout=out)
    assert f"{len(claims):6d}  capacity minute claims older than an hour deleted" in out.getvalue()
    assert CapacitySample.objects.count() == len(claims)
    report = purge(now=at)
    assert report.capacity_claims_deleted == len(claims) and not CapacitySample.objects.exists()
    assert not report.changed  # housekeeping: no audit event for it
    assert sorted(CapacityHour.objects.values_list()) == figures
    for hour in CapacityHour.objects.values_list("hour", flat=True):
        assert (hour.minute, hour.second, hour.microsecond) == (0, 0, 0)


@pytest.mark.django_db
def test_the_command_refuses_a_bad_moment():
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("purge", "--now", "next tuesday", stdout=io.StringIO())


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_hosts_purging_at_once_do_each_thing_once(make_youth, ingrid):
    """Two purges at the same moment (two hosts' timers) on PostgreSQL: every key destroyed
    and every identity deleted exactly once between them, and neither fails."""
    for _ in range(12):
        youth, conversation = chat(make_youth, ingrid)
        say(Actor.for_youth(youth), conversation, "hei", "c1")
        end(ingrid, conversation)
    later = timezone.now() + 61 * DAY
    reports, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait(5)
            reports.append(purge(now=later))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(r.content_destroyed for r in reports) == 12
    assert sum(r.conversations_deleted for r in reports) == 12
    assert sum(r.identities_deleted for r in reports) == 12
    assert not Youth.objects.exists() and not Message.objects.exists()
    assert AuditEvent.objects.filter(action="retention.purge").count() in (1, 2)


UNITS = Path(__file__).resolve().parent.parent / "deploy" / "systemd"


def unit(name: str) -> dict:
    """`Key=value` lines of a unit file (a key given twice keeps the last)."""
    values = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_the_timer_runs_the_purge_daily_and_catches_up():
    timer = unit("youthhub-purge.timer")
    assert timer["OnCalendar"] == "*-*-* 03:30:00"
    assert timer["Persistent"] == "true"
    assert timer["WantedBy"] == "timers.target"
    service = unit("youthhub-purge.service")
    assert service["Type"] == "oneshot"
    assert service["User"] == "youthhub" and service["User"] != "root"
    assert service["EnvironmentFile"] == "/etc/youthhub/youthhub.env"
    assert service["ExecStart"].endswith("manage.py purge")


@pytest.mark.django_db
def test_the_units_command_runs_with_the_production_environment(make_youth):
    """What ExecStart runs, with the settings a production host has (the test database when
    there is one): here as a dry run, so the test's own transaction is not disturbed."""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("production settings need PostgreSQL")
    env = production_env()
    result = subprocess.run(
        [sys.executable, "manage.py", "purge", "--dry-run"],
        cwd=UNITS.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "stale anonymous identities deleted" in result.stdout
    assert "Nothing was changed." in result.stdout


@pytest.mark.django_db
def test_anonymous_consultations_go_after_the_retention_period(ingrid):
    handover_services.service_directory_seed()
    bup = handover_services.partner_create_or_update(
        username="bup", password=PASSWORD, service_slug="bup-vestfold"
    ).user
    now = timezone.now()
    handover_services.consultation_ask(
        user=ingrid, service="bup-vestfold", question="Et råd om en 15-åring?"
    )
    answered = handover_services.consultation_ask(
        user=ingrid, service="bup-vestfold", question="Og om en 17-åring?"
    )
    handover_services.consultation_answer(
        user=bup, consultation_id=answered.id, answer="Ring oss.", now=now + 20 * DAY
    )
    report = purge(now=now + 29 * DAY)
    assert report.consultations_deleted == 0 and Consultation.objects.count() == 2
    # 30 days after the question nobody answered; the answered one 30 days after its answer.
    report = purge(now=now + 31 * DAY)
    assert report.consultations_deleted == 1
    assert list(Consultation.objects.values_list("id", flat=True)) == [answered.id]
    assert purge(now=now + 51 * DAY).consultations_deleted == 1
    assert not Consultation.objects.exists()
    assert AuditEvent.objects.filter(action="consultation.ask").count() == 2
