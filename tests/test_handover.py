"""Warm handover on the database (youthhub/handover, docs/handover.md): the directory, partner
accounts, consent per service, the access rules, the state machine, encryption, the audit
trail and the frames published, all without WebSockets."""

import io
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation

from chat import events as chat_events
from chat.errors import ServiceError
from chat.models import Conversation
from chat.protocol import ConsentAnswer
from dropin import services as queue
from tests.conftest import PASSWORD
from youthhub.audit.models import AuditEvent
from youthhub.handover import selectors, services
from youthhub.handover.models import (
    Consent,
    Consultation,
    Handover,
    HandoverKey,
    PartnerProfile,
    Service,
)

pytestmark = pytest.mark.django_db

SUMMARY = {
    "concern": "Sover dårlig og gruer seg til skolen hver morgen",
    "own_words": "Jeg vil klare å gå på skolen igjen",
    "tried": "Samtaler med helsesykepleier i høst",
    "assessment": "Trenger mer enn lavterskel; BUP-vurdering anbefales",
    "interim_plan": "Chat med Ingrid hver tirsdag til BUP svarer",
    "who_does_what": "Ingrid følger opp til første møte; ungdommen tar kontakt ved krise",
    "existing_plan": "Ingen plan eller koordinator",
}


def asked(handover) -> str:
    """The wording version the youth's page shows for this proposal (sent back with a yes)."""
    view = selectors.handover_for_youth(handover.youth, handover.id)
    return view.get("ask", {}).get("text_version", "not-asked")


def error_code(fn, **kwargs) -> str:
    with pytest.raises(ServiceError) as exc:
        fn(**kwargs)
    return exc.value.code


def actions(handover) -> list[str]:
    return list(
        AuditEvent.objects.filter(detail__handover=str(handover.id)).values_list(
            "action", flat=True
        )
    )


@pytest.fixture(autouse=True)
def english():
    """Text assertions below are on the English msgids (the bokmål catalog is filled later)."""
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def directory(db):
    return {service.slug: service for service in services.service_directory_seed()}


@pytest.fixture
def make_partner(directory):
    def make(username="bup", slug="bup-vestfold", name=None):
        profile = services.partner_create_or_update(
            username=username, password=PASSWORD, service_slug=slug, display_name=name
        )
        return profile.user

    return make


@pytest.fixture
def bup(make_partner):
    return make_partner("bup", "bup-vestfold", "Kari, BUP")


@pytest.fixture
def hfu(make_partner):
    return make_partner("hfu", "hfu-tonsberg", "Helsestasjonen")


def chatting(make_youth, staff) -> Conversation:
    youth, _ = make_youth()
    conversation = queue.queue_request(youth=youth, target={"staff": staff.id})
    return queue.queue_accept(user=staff, conversation_id=conversation.id)


def drafted(staff, conversation, *, slug="bup-vestfold", reach="contact", **kwargs):
    return services.handover_draft(
        user=staff,
        conversation_id=conversation.id,
        service=slug,
        reach=reach,
        summary=kwargs.pop("summary", SUMMARY),
        **kwargs,
    )


def proposed(staff, conversation, **kwargs) -> Handover:
    handover = drafted(staff, conversation, **kwargs)
    return services.handover_propose(user=staff, handover_id=handover.id)


def agree(handover, *, service="bup-vestfold", now=None, **kwargs):
    kwargs.setdefault("answer", "agree")
    kwargs.setdefault("age_band", "16_plus")
    kwargs.setdefault("text_version", asked(handover))
    return services.consent_answer(
        youth=handover.youth,
        handover_id=handover.id,
        service=service,
        now=now,
        **kwargs,
    )


def sent(staff, conversation, **kwargs) -> Handover:
    agree_kwargs = {
        k: kwargs.pop(k) for k in ("answer", "exceptions", "contact", "age_band") if k in kwargs
    }
    handover = proposed(staff, conversation, **kwargs)
    agree(handover, service=kwargs.get("slug", "bup-vestfold"), **agree_kwargs)
    return Handover.objects.get(id=handover.id)


def snapshot(handover) -> tuple:
    handover = Handover.objects.get(id=handover.id)
    return (
        handover.state,
        handover.answered_at,
        handover.consent_id,
        Consent.objects.count(),
        AuditEvent.objects.count(),
    )


def raw_column(table: str, column: str, row_id) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE id = %s",
            [row_id.hex if connection.vendor == "sqlite" else row_id],
        )
        (value,) = cursor.fetchone()
    return bytes(value) if value is not None else b""


# -- directory and partner accounts ------------------------------------------------------------


def test_the_directory_seed_is_idempotent_and_says_how_each_service_is_reached(directory):
    again = services.service_directory_seed()
    assert Service.objects.count() == len(again) == len(directory) >= 15
    bup = directory["bup-vestfold"]
    assert bup.access == "referral" and "fastlege" in bup.referral_from
    assert bup.age_max == 17 and bup.takes_digital_handovers
    assert directory["legevakt-tonsberg"].phone == "116 117"
    kinds = {service.kind for service in directory.values()}
    assert {"bup", "dps", "helsestasjon_ungdom", "barnevern", "nav", "legevakt"} <= kinds
    for service in directory.values():  # plain words for youth: no diagnosis words
        for word in ("angst", "depresjon", "diagnose", "lidelse"):
            assert word not in service.youth_description.lower()
    ages = {card["slug"] for card in selectors.service_directory(age=19)}
    assert "dps-vestfold" in ages and "bup-vestfold" not in ages


def test_partner_accounts_are_scoped_to_one_service_and_never_staff(make_partner, team):
    ingrid, _sara = team
    user = make_partner("bup", "bup-vestfold")
    assert user.partner_profile.service.slug == "bup-vestfold"
    with pytest.raises(ValidationError):
        services.partner_create_or_update(
            username="x", password="short", service_slug="bup-vestfold"
        )
    with pytest.raises(ValidationError):
        services.partner_create_or_update(
            username="y", password=PASSWORD, service_slug="no-such-service"
        )
    with pytest.raises(ValidationError):  # a staff account cannot become a partner
        services.partner_create_or_update(
            username="ingrid", password=PASSWORD, service_slug="bup-vestfold"
        )
    assert not PartnerProfile.objects.filter(user=ingrid).exists()
    out = io.StringIO()
    call_command(
        "addpartner",
        "nina",
        "--service",
        "hfu-tonsberg",
        "--display-name",
        "Nina",
        stdin=io.StringIO(PASSWORD + "\n"),
        stdout=out,
    )
    assert "Helsestasjon for ungdom" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("addpartner", "ola", "--service", "hfu-tonsberg", stdin=io.StringIO("weak\n"))


def test_seed_demo_adds_the_directory_and_demo_partners(django_user_model):
    from youthhub.staff.management.commands.seed_demo import DEMO_PASSWORD

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    assert Service.objects.filter(slug="bup-vestfold").count() == 1
    bup = django_user_model.objects.get(username="bup")
    assert bup.partner_profile.service.name == "BUP Vestfold"
    assert bup.check_password(DEMO_PASSWORD)
    hfu = django_user_model.objects.get(username="hfu")
    assert hfu.partner_profile.service.slug == "hfu-tonsberg"


# -- the whole way, with the audit trail and frames -------------------------------------------


def test_a_handover_from_draft_to_met_is_audited_step_by_step(
    team, make_youth, bup, make_staff, monkeypatch, django_capture_on_commit_callbacks
):
    ingrid, _sara = team
    mona = make_staff("mona", "social_worker", is_supervisor=True)
    sent_frames = []
    monkeypatch.setattr(
        "chat.events._send", lambda group, frame: sent_frames.append((group, frame))
    )
    conversation = chatting(make_youth, ingrid)
    youth = conversation.youth
    with django_capture_on_commit_callbacks(execute=True):
        handover = drafted(ingrid, conversation, named_person="Kari")
    assert handover.state == "draft"
    # The draft goes to the sender only; the youth never sees a draft.
    assert [g for g, _ in sent_frames] == [f"staffuser.{ingrid.id}"]
    assert error_code(selectors.handover_for_youth, youth=youth, handover_id=handover.id) == (
        "not_found"
    )
    sent_frames.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.handover_propose(user=ingrid, handover_id=handover.id)
    request = dict(sent_frames)[f"youth.{youth.id.hex}"]
    assert request["type"] == "consent.request"
    view = request["handover"]
    assert view["state"] == "proposed" and view["service"]["name"] == "BUP Vestfold"
    assert [s["key"] for s in view["sections"]] == list(SUMMARY)
    assert view["ask"]["answers"] == ["agree", "agree_except", "change", "no"]
    assert view["ask"]["asks_contact"] is True
    sent_frames.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = agree(handover, contact="Ring meg på 400 00 000 etter skolen")
    handover.refresh_from_db()
    assert handover.state == "sent" and result.code is None
    assert selectors.staff_card(handover)["guidance"] == []
    assert result.consent.expires_at == result.consent.given_at + timedelta(days=30)
    assert handover.reply_expected_by == handover.sent_at + timedelta(days=10)
    groups = {group: frame for group, frame in sent_frames}
    assert groups[f"partner.{bup.partner_profile.service_id}"]["handover"]["visible"] is True
    # No content in a partner frame: the summary is an audited read.
    assert "Sover" not in str(groups[f"partner.{bup.partner_profile.service_id}"])
    assert groups[f"staffuser.{ingrid.id}"]["type"] == "handover.update"
    assert groups[f"youth.{youth.id.hex}"]["handover"]["state"] == "sent"

    inbox = selectors.partner_inbox(bup)
    assert [card["id"] for card in inbox] == [str(handover.id)]
    detail = selectors.handover_for_partner(bup, handover.id)
    assert detail["sections"][0]["text"] == SUMMARY["concern"]
    assert detail["contact"] is None and detail["has_contact"]  # only once accepted
    meeting = timezone.now() + timedelta(days=5)
    services.handover_accept(
        user=bup,
        handover_id=handover.id,
        first_meeting_at=meeting,
        where="BUP Tønsberg",
        who="Kari",
    )
    assert selectors.handover_for_partner(bup, handover.id)["contact"] == (
        "Ring meg på 400 00 000 etter skolen"
    )
    status = selectors.handover_for_youth(youth, handover.id)["status"]
    assert (
        "BUP Vestfold" in status
        and meeting.astimezone(timezone.get_current_timezone()).strftime("%H:%M") in status
    )
    services.handover_met(user=bup, handover_id=handover.id)
    assert Handover.objects.get(id=handover.id).state == "met"
    assert actions(handover) == [
        "handover.draft",
        "handover.propose",
        "consent.answer",
        "handover.send",
        "handover.read",
        "handover.accept",
        "handover.read",
        "handover.met",
    ]
    events = AuditEvent.objects.filter(detail__handover=str(handover.id))
    kinds = {e.action: (e.actor_kind, e.actor_id) for e in events}
    assert kinds["consent.answer"] == ("youth", None)
    assert kinds["handover.send"] == ("youth", None)
    assert kinds["handover.accept"] == ("partner", bup.id)
    assert kinds["handover.read"] == ("partner", bup.id)
    assert kinds["handover.draft"] == ("staff", ingrid.id)
    assert all(e.conversation_id == conversation.id for e in events)
    # Ids and codes only in the audit log, never content.
    assert "Sover" not in str([e.detail for e in events]) and "400 00" not in str(
        [e.detail for e in events]
    )
    # The supervisor reads it (audited); the sender's own reads are not.
    selectors.handover_for_staff(ingrid, handover.id)
    selectors.handover_for_staff(mona, handover.id)
    read = AuditEvent.objects.filter(action="handover.read", actor=mona).get()
    assert read.detail["reason"] == "supervisor"


# -- who may see what --------------------------------------------------------------------------


def test_a_partner_sees_nothing_before_consent_nor_another_services_handover(
    team, make_youth, bup, hfu
):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = drafted(ingrid, conversation)
    assert error_code(selectors.handover_for_partner, user=bup, handover_id=handover.id) == (
        "not_allowed"
    )
    services.handover_propose(user=ingrid, handover_id=handover.id)
    assert error_code(selectors.handover_for_partner, user=bup, handover_id=handover.id) == (
        "not_allowed"
    )
    assert selectors.partner_inbox(bup) == []
    agree(handover)
    assert selectors.handover_for_partner(bup, handover.id)["handover"]["visible"]
    # Helsestasjonen is another service: the handover does not exist for them.
    assert error_code(selectors.handover_for_partner, user=hfu, handover_id=handover.id) == (
        "not_found"
    )
    assert selectors.partner_inbox(hfu) == []
    assert (
        error_code(
            services.handover_accept,
            user=hfu,
            handover_id=handover.id,
            first_meeting_at=timezone.now() + timedelta(days=1),
        )
        == "not_found"
    )
    # Staff are not partners, and partners are not staff.
    assert error_code(selectors.handover_for_partner, user=ingrid, handover_id=handover.id) == (
        "not_allowed"
    )
    assert error_code(selectors.handover_for_staff, user=bup, handover_id=handover.id) == (
        "not_allowed"
    )
    # Audit: only the one allowed read.
    assert actions(handover).count("handover.read") == 1


def test_withdrawal_ends_the_partners_access_at_once_and_destroys_the_key(
    team, make_youth, bup, monkeypatch, django_capture_on_commit_callbacks
):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = sent(ingrid, conversation, contact="mobil 400 00 000")
    services.handover_accept(
        user=bup, handover_id=handover.id, first_meeting_at=timezone.now() + timedelta(days=2)
    )
    assert selectors.handover_for_partner(bup, handover.id)["contact"] == "mobil 400 00 000"
    frames = []
    monkeypatch.setattr("chat.events._send", lambda group, frame: frames.append((group, frame)))
    # Someone else's youth identity cannot withdraw it.
    other, _ = make_youth()
    assert error_code(services.consent_withdraw, youth=other, handover_id=handover.id) == (
        "not_allowed"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.consent_withdraw(youth=handover.youth, handover_id=handover.id)
    handover.refresh_from_db()
    assert handover.state == "withdrawn" and handover.consent.withdrawn_at is not None
    key = HandoverKey.objects.get(handover=handover)
    assert key.wrapped is None and key.destroyed_at is not None
    assert selectors.data_key(handover.id) is None
    assert error_code(selectors.handover_for_partner, user=bup, handover_id=handover.id) == (
        "not_allowed"
    )
    assert selectors.partner_inbox(bup) == []
    partner_frame = dict(frames)[f"partner.{bup.partner_profile.service_id}"]
    assert partner_frame["handover"] == {
        "id": str(handover.id),
        "state": "withdrawn",
        "visible": False,
        "reason": "consent",
    }
    # Nothing left to read for staff either; the youth sees it in plain words.
    assert selectors.handover_for_staff(ingrid, handover.id)["summary"] is None
    view = selectors.handover_for_youth(handover.youth, handover.id)
    assert view["sections"] is None and view["content_deleted"] and view["contact"] is None
    assert view["consent"]["can_withdraw"] is False
    # Twice is nothing to withdraw; the partner cannot answer any more.
    assert error_code(services.consent_withdraw, youth=handover.youth, handover_id=handover.id) == (
        "nothing_to_withdraw"
    )
    assert error_code(services.handover_met, user=bup, handover_id=handover.id) == "not_accepted"
    assert "consent.withdraw" in actions(handover)
    withdraw = AuditEvent.objects.get(action="consent.withdraw")
    assert withdraw.actor_kind == "youth" and withdraw.actor is None


def test_an_expired_consent_cannot_be_used(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = sent(ingrid, conversation)
    later = timezone.now() + timedelta(days=31)
    assert selectors.handover_for_partner(bup, handover.id)  # today: fine
    assert error_code(
        selectors.handover_for_partner, user=bup, handover_id=handover.id, now=later
    ) == ("not_allowed")
    assert selectors.partner_inbox(bup, now=later) == []
    before = snapshot(handover)
    assert error_code(
        services.handover_accept,
        user=bup,
        handover_id=handover.id,
        first_meeting_at=later + timedelta(days=1),
        now=later,
    ) == ("consent_expired")
    assert error_code(
        services.handover_decline,
        user=bup,
        handover_id=handover.id,
        reason="Fullt",
        alternative="Kommunepsykologen",
        now=later,
    ) == ("consent_expired")
    assert snapshot(handover) == before
    # The tick expires it and destroys the key; the youth's old yes cannot be reused.
    result = services.handover_tick(now=later)
    assert result["expired"] == 1
    handover.refresh_from_db()
    assert handover.state == "expired" and selectors.data_key(handover.id) is None
    assert error_code(agree, handover=handover, now=later) == "not_proposed"
    assert error_code(services.handover_propose, user=ingrid, handover_id=handover.id) == (
        "not_editable"
    )
    assert "handover.expire" in actions(handover)
    view = selectors.handover_for_youth(handover.youth, handover.id)
    assert view["state"] == "expired" and view["sections"] is None
    # A second tick finds nothing to do.
    assert services.handover_tick(now=later)["expired"] == 0


def test_a_new_person_needs_a_new_consent(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = sent(ingrid, conversation, named_person="Kari")
    assert selectors.handover_for_partner(bup, handover.id)
    # Editing is over once the youth said yes ...
    assert error_code(
        services.handover_update, user=ingrid, handover_id=handover.id, named_person="Per"
    ) == ("not_editable")
    # ... and a consent names one person: another name on the row is not covered by it.
    Handover.objects.filter(id=handover.id).update(named_person="Per")
    assert error_code(selectors.handover_for_partner, user=bup, handover_id=handover.id) == (
        "not_allowed"
    )


def test_staff_outside_the_conversation_cannot_see_or_change_the_draft(
    team, make_youth, make_staff
):
    ingrid, sara = team
    mona = make_staff("mona", "social_worker", is_supervisor=True)
    conversation = chatting(make_youth, ingrid)
    handover = drafted(ingrid, conversation)
    assert selectors.handover_for_staff(ingrid, handover.id)["summary"] == SUMMARY
    assert error_code(selectors.handover_for_staff, user=sara, handover_id=handover.id) == (
        "not_allowed"
    )
    assert error_code(services.handover_propose, user=sara, handover_id=handover.id) == (
        "not_allowed"
    )
    assert error_code(
        services.handover_update, user=sara, handover_id=handover.id, summary={"concern": "x"}
    ) == ("not_allowed")
    assert selectors.staff_handovers(sara) == []
    # Sara cannot start one on Ingrid's conversation either.
    assert error_code(
        services.handover_draft,
        user=sara,
        conversation_id=conversation.id,
        service="bup-vestfold",
        reach="warm",
        summary=SUMMARY,
    ) == ("not_allowed")
    # A supervisor may read it (audited), not change it.
    assert selectors.handover_for_staff(mona, handover.id)["summary"] == SUMMARY
    assert error_code(services.handover_propose, user=mona, handover_id=handover.id) == (
        "not_allowed"
    )
    assert [card["id"] for card in selectors.staff_handovers(ingrid)] == [str(handover.id)]
    assert Handover.objects.get(id=handover.id).state == "draft"


def test_the_youth_sees_exactly_what_is_shared_minus_exceptions(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    # Before answering: everything proposed, word for word.
    view = selectors.handover_for_youth(conversation.youth, handover.id)
    assert {s["key"]: s["text"] for s in view["sections"]} == SUMMARY
    assert {t["key"] for t in view["ask"]["may_except"]["topics"]} >= {"family", "substances"}
    result = agree(handover, answer="agree_except", exceptions=["tried", "family"])
    assert result.consent.exceptions == ["tried", "family"]
    view = selectors.handover_for_youth(conversation.youth, handover.id)
    shared = [s["key"] for s in view["sections"]]
    assert "tried" not in shared and shared == [k for k in SUMMARY if k != "tried"]
    assert [t["key"] for t in view["not_shared_topics"]] == ["family"]
    assert view["consent"]["can_withdraw"]
    # The partner gets exactly the same sections, and is told which topic was excepted.
    detail = selectors.handover_for_partner(bup, handover.id)
    assert [s["key"] for s in detail["sections"]] == shared
    assert SUMMARY["tried"] not in str(detail)
    assert [t["key"] for t in detail["not_shared_topics"]] == ["family"]
    # Another youth cannot look at it.
    other, _ = make_youth()
    assert error_code(selectors.handover_for_youth, youth=other, handover_id=handover.id) == (
        "not_allowed"
    )


def test_a_no_and_a_change_send_nothing_and_guide_staff(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    result = services.consent_answer(
        youth=conversation.youth,
        handover_id=handover.id,
        service="bup-vestfold",
        answer="change",
        text_version=asked(handover),
        reason="Ikke skriv om søvnen",
    )
    assert result.handover.state == "changes_requested"
    assert selectors.staff_card(result.handover)["guidance"] == ["change"]
    staff_view = selectors.handover_for_staff(ingrid, handover.id)
    assert staff_view["youth_reason"] == "Ikke skriv om søvnen"
    services.handover_update(
        user=ingrid, handover_id=handover.id, summary={"concern": "Gruer seg til skolen"}
    )
    services.handover_propose(user=ingrid, handover_id=handover.id)
    result = services.consent_answer(
        youth=conversation.youth,
        handover_id=handover.id,
        service=handover.service_id,
        answer="no",
        text_version=asked(handover),
    )
    assert result.handover.state == "refused"
    assert selectors.staff_card(result.handover)["guidance"] == ["no"]
    assert selectors.partner_inbox(bup) == []
    assert (
        "Nothing was sent"
        in selectors.handover_for_youth(conversation.youth, handover.id)["status"]
    )
    assert Consent.objects.filter(handover=handover).count() == 2
    answers = AuditEvent.objects.filter(action="consent.answer").values_list(
        "detail__answer", flat=True
    )
    assert list(answers) == ["change", "no"]
    assert "handover.send" not in actions(handover)


def test_under_16_gives_staff_guidance_and_tells_the_partner(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    view = selectors.handover_for_youth(conversation.youth, handover.id)
    assert view["ask"]["under_16_note"]
    result = agree(handover, age_band="under_16")
    assert selectors.staff_card(result.handover)["guidance"] == ["under_16"]
    detail = selectors.handover_for_partner(bup, handover.id)
    assert detail["handover"]["age_band"] == "under_16" and detail["guidance"]


def test_editing_a_proposal_takes_the_question_back(team, make_youth):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    services.handover_update(user=ingrid, handover_id=handover.id, named_person="Kari")
    assert Handover.objects.get(id=handover.id).state == "draft"
    view = selectors.handover_for_youth(conversation.youth, handover.id)
    assert view["state"] == "draft" and view["sections"] is None and "changes" in view["status"]
    assert error_code(agree, handover=handover) == "not_proposed"
    services.handover_propose(user=ingrid, handover_id=handover.id)
    result = agree(handover)
    assert result.consent.named_person == "Kari"


# -- partners answer ---------------------------------------------------------------------------


def test_a_decline_needs_a_reason_and_an_alternative_offer(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = sent(ingrid, conversation)
    before = snapshot(handover)
    for reason, alternative, code in (
        ("", "Kommunepsykologen", "reason_required"),
        ("Ikke for BUP nå", "", "alternative_required"),
        ("Ikke for BUP nå", "   ", "alternative_required"),
    ):
        assert (
            error_code(
                services.handover_decline,
                user=bup,
                handover_id=handover.id,
                reason=reason,
                alternative=alternative,
            )
            == code
        )
    assert snapshot(handover) == before
    # The sender stays responsible: a sent handover cannot be closed meanwhile.
    assert error_code(services.handover_close, user=ingrid, handover_id=handover.id) == (
        "not_closable"
    )
    # The database refuses a declined handover without an alternative.
    with pytest.raises(IntegrityError), transaction.atomic():
        Handover.objects.filter(id=handover.id).update(
            state="declined", decline_reason=b"x", alternative=None
        )
    services.handover_decline(
        user=bup,
        handover_id=handover.id,
        reason="Trenger henvisning fra fastlege først",
        alternative="Kommunepsykologen kan ta imot nå; fastlegen kan henvise videre",
        alternative_service="kommunepsykolog-tonsberg",
    )
    handover.refresh_from_db()
    assert handover.state == "declined"
    assert b"fastlege" not in bytes(handover.decline_reason)
    staff_view = selectors.handover_for_staff(ingrid, handover.id)
    assert staff_view["decline_reason"] == "Trenger henvisning fra fastlege først"
    assert staff_view["alternative"].startswith("Kommunepsykologen")
    youth_view = selectors.handover_for_youth(handover.youth, handover.id)
    assert "Kommunepsykolog Tønsberg" in youth_view["status"]
    assert youth_view["alternative"].startswith("Kommunepsykologen")
    # Answering twice is refused, and the partner no longer reads it.
    assert error_code(
        services.handover_accept,
        user=bup,
        handover_id=handover.id,
        first_meeting_at=timezone.now() + timedelta(days=3),
    ) == ("already_answered")
    assert error_code(selectors.handover_for_partner, user=bup, handover_id=handover.id) == (
        "not_allowed"
    )
    services.handover_close(user=ingrid, handover_id=handover.id)
    handover.refresh_from_db()
    assert handover.state == "closed" and selectors.data_key(handover.id) is None
    assert actions(handover)[-2:] == ["handover.decline", "handover.close"]


def test_a_partner_cannot_answer_twice(team, make_youth, bup, make_partner):
    ingrid, _sara = team
    colleague = make_partner("bup2", "bup-vestfold", "Per, BUP")
    conversation = chatting(make_youth, ingrid)
    handover = sent(ingrid, conversation, contact="per epost")
    meeting = timezone.now() + timedelta(days=4)
    services.handover_accept(user=bup, handover_id=handover.id, first_meeting_at=meeting)
    before = snapshot(handover)
    assert error_code(
        services.handover_accept, user=bup, handover_id=handover.id, first_meeting_at=meeting
    ) == ("already_answered")
    assert error_code(
        services.handover_decline,
        user=colleague,
        handover_id=handover.id,
        reason="x",
        alternative="y",
    ) == ("already_answered")
    assert snapshot(handover) == before
    # A colleague at the same service reads the summary, but the contact details are only
    # for the partner who accepted.
    detail = selectors.handover_for_partner(colleague, handover.id)
    assert detail["sections"] and detail["contact"] is None
    assert selectors.handover_for_partner(bup, handover.id)["contact"] == "per epost"
    assert (
        error_code(
            services.handover_accept,
            user=bup,
            handover_id=handover.id,
            first_meeting_at=timezone.now() - timedelta(days=3),
        )
        == "bad_time"
    )


def test_a_bad_meeting_time_is_refused(team, make_youth, bup):
    ingrid, _sara = team
    handover = sent(ingrid, chatting(make_youth, ingrid))
    before = snapshot(handover)
    for when in (
        None,
        "tirsdag",
        timezone.now() - timedelta(days=2),
        timezone.now() + timedelta(days=400),
    ):
        assert (
            error_code(
                services.handover_accept, user=bup, handover_id=handover.id, first_meeting_at=when
            )
            == "bad_time"
        )
    assert snapshot(handover) == before


def test_an_overdue_handover_is_flagged_once_to_the_sender_and_supervisors(
    team, make_youth, bup, make_staff, monkeypatch, django_capture_on_commit_callbacks
):
    ingrid, _sara = team
    mona = make_staff("mona", "social_worker", is_supervisor=True)
    handover = sent(ingrid, chatting(make_youth, ingrid))
    assert services.handover_tick()["overdue"] == []
    late = handover.reply_expected_by + timedelta(hours=1)
    assert [h.id for h in selectors.handovers_overdue(late)] == [handover.id]
    frames = []
    monkeypatch.setattr("chat.events._send", lambda group, frame: frames.append((group, frame)))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.handover_tick(now=late)
    assert result["overdue"] == [{"handover": handover.id, "notify": [ingrid.id, mona.id]}]
    groups = {group for group, _ in frames}
    assert {f"staffuser.{ingrid.id}", f"staffuser.{mona.id}"} <= groups
    card = dict(frames)[f"staffuser.{mona.id}"]["handover"]
    assert card["overdue_flagged_at"] == late.isoformat()
    assert Handover.objects.get(id=handover.id).overdue_flagged_at == late
    # Once only.
    assert services.handover_tick(now=late + timedelta(days=1))["overdue"] == []
    assert actions(handover).count("handover.overdue") == 1
    overdue_event = AuditEvent.objects.get(action="handover.overdue")
    assert overdue_event.actor_kind == "system"
    # Still overdue in the list until answered; an answer ends it.
    assert selectors.handovers_overdue(late)
    services.handover_accept(
        user=bup,
        handover_id=handover.id,
        first_meeting_at=late + timedelta(days=1),
        now=late,
    )
    assert selectors.handovers_overdue(late + timedelta(days=1)) == []


# -- bad input ---------------------------------------------------------------------------------


def test_bad_consent_answers_change_nothing(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    before = snapshot(handover)
    cases = [
        ({"service": "hfu-tonsberg"}, "wrong_service"),
        ({"service": Service.objects.get(slug="nav-tonsberg").id}, "wrong_service"),
        ({"answer": "maybe"}, "bad_answer"),
        ({"answer": None}, "bad_answer"),
        ({"age_band": None}, "age_band_required"),
        ({"age_band": "15"}, "bad_age_band"),
        ({"text_version": ""}, "bad_text_version"),
        ({"answer": "agree", "exceptions": ["tried"]}, "bad_exceptions"),
        ({"answer": "agree_except", "exceptions": []}, "bad_exceptions"),
        ({"answer": "agree_except", "exceptions": ["politics"]}, "bad_exceptions"),
        ({"answer": "agree_except", "exceptions": list(SUMMARY)}, "nothing_shared"),
        ({"answer": "agree", "reason": "fordi"}, "bad_reason"),
        ({"answer": "no", "contact": "400 00 000"}, "bad_contact"),
    ]
    version = asked(handover)
    cases.append(({"text_version": "0" * 16}, "stale"))  # a wording the youth was not shown
    for override, code in cases:
        kwargs = {
            "youth": conversation.youth,
            "handover_id": handover.id,
            "service": "bup-vestfold",
            "answer": "agree",
            "text_version": version,
            "age_band": "16_plus",
            **override,
        }
        assert error_code(services.consent_answer, **kwargs) == code, override
    assert snapshot(handover) == before
    assert selectors.partner_inbox(bup) == []
    # A youth answering someone else's handover, and unknown ids.
    other, _ = make_youth()
    assert error_code(agree, handover=Handover(id=handover.id, youth=other)) == "not_allowed"
    assert (
        error_code(
            services.consent_answer,
            youth=conversation.youth,
            handover_id="not-a-uuid",
            service="bup-vestfold",
            answer="agree",
            text_version=version,
            age_band="16_plus",
        )
        == "not_found"
    )
    # Answering again after the yes.
    agree(handover)
    before = snapshot(handover)
    assert error_code(agree, handover=handover) == "already_answered"
    assert snapshot(handover) == before


def test_bad_drafts_are_refused(team, make_youth, directory):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    base = {"user": ingrid, "conversation_id": conversation.id, "reach": "code", "summary": SUMMARY}
    for override, code in (
        ({"service": "legevakt-tonsberg"}, "not_digital"),
        ({"service": "nowhere"}, "bad_service"),
        ({"service": "bup-vestfold", "reach": "pigeon"}, "bad_reach"),
        ({"service": "bup-vestfold", "summary": {"diagnosis": "x"}}, "bad_summary"),
        ({"service": "bup-vestfold", "scope": ["secrets"]}, "bad_scope"),
        ({"service": "bup-vestfold", "summary": {"concern": "x" * 5000}}, "too_long"),
    ):
        assert error_code(services.handover_draft, **{**base, **override}) == code, override
    assert Handover.objects.count() == 0
    incomplete = services.handover_draft(
        **{**base, "service": "bup-vestfold", "summary": {"concern": "x"}}
    )
    assert error_code(services.handover_propose, user=ingrid, handover_id=incomplete.id) == (
        "incomplete"
    )
    # One open handover per youth and service.
    assert error_code(services.handover_draft, **{**base, "service": "bup-vestfold"}) == (
        "conflict"
    )
    assert Handover.objects.count() == 1
    assert AuditEvent.objects.filter(action="handover.draft").count() == 1


# -- encryption and codes ----------------------------------------------------------------------


def test_summary_and_contact_details_are_encrypted_at_rest(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = sent(ingrid, conversation, contact="snap: hemmelig_bruker")
    summary = raw_column("handover_handover", "summary", handover.id)
    contact = raw_column("handover_handover", "contact", handover.id)
    assert summary and contact
    for blob in (summary, contact):
        assert b"Sover" not in blob and b"hemmelig" not in blob and b"concern" not in blob
    # Bound to its row: another handover's summary does not decrypt here.
    second = drafted(ingrid, conversation, slug="hfu-tonsberg")
    Handover.objects.filter(id=second.id).update(summary=summary)
    with pytest.raises(Exception, match="verify"):
        selectors.handover_for_staff(ingrid, second.id)
    # The wrapped key is not the data key, and destroying it is the end of the content.
    key = HandoverKey.objects.get(handover=handover)
    assert len(bytes(key.wrapped)) > 32 and key.master_key_id == "k2"
    services.consent_withdraw(youth=handover.youth, handover_id=handover.id)
    assert HandoverKey.objects.get(handover=handover).wrapped is None


def test_a_handover_code_is_shown_once_stored_hashed_and_works_at_the_service(
    team, make_youth, bup, hfu
):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation, reach="code")
    result = agree(handover)
    code = result.code
    assert code and len(code) == 9 and code[4] == "-"
    row = Handover.objects.get(id=handover.id)
    assert code.replace("-", "") not in row.code_hash and code[5:] not in row.code_hash
    assert row.code_selector == code[:4]
    assert (
        "Show your code" in selectors.handover_for_youth(conversation.youth, handover.id)["status"]
    )
    detail = services.handover_by_code(bup, code.lower())
    assert detail["handover"]["id"] == str(handover.id)
    assert AuditEvent.objects.filter(action="handover.read", detail__via="code").count() == 1
    wrong = code[:5] + ("2222" if code[5:] != "2222" else "3333")
    assert error_code(services.handover_by_code, user=bup, code=wrong) == "bad_code"
    assert error_code(services.handover_by_code, user=hfu, code=code) == "bad_code"
    assert error_code(services.handover_by_code, user=ingrid, code=code) == "not_allowed"
    # Withdrawing ends the code too.
    services.consent_withdraw(youth=conversation.youth, handover_id=handover.id)
    assert error_code(services.handover_by_code, user=bup, code=code) == "bad_code"


def test_closing_a_draft_or_proposal_deletes_its_content(team, make_youth):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    services.handover_close(user=ingrid, handover_id=handover.id)
    handover.refresh_from_db()
    assert handover.state == "closed" and selectors.data_key(handover.id) is None
    assert selectors.handover_for_youth(conversation.youth, handover.id)["status"]
    assert error_code(services.handover_close, user=ingrid, handover_id=handover.id) == (
        "not_closable"
    )
    # A new one to the same service may start now.
    assert drafted(ingrid, conversation).state == "draft"


def test_stale_drafts_expire_and_answered_handovers_lose_their_content(team, make_youth, bup):
    ingrid, _sara = team
    draft = drafted(ingrid, chatting(make_youth, ingrid), slug="hfu-tonsberg")
    accepted = sent(ingrid, chatting(make_youth, ingrid))
    services.handover_accept(
        user=bup, handover_id=accepted.id, first_meeting_at=timezone.now() + timedelta(days=1)
    )
    later = timezone.now() + timedelta(days=31)
    result = services.handover_tick(now=later)
    assert result["expired"] == 1 and result["content_deleted"] == 1
    assert Handover.objects.get(id=draft.id).state == "expired"
    accepted.refresh_from_db()
    assert accepted.state == "accepted" and selectors.data_key(accepted.id) is None
    # The outcome can still be recorded; the content is gone.
    services.handover_met(user=ingrid, handover_id=accepted.id)
    assert Handover.objects.get(id=accepted.id).state == "met"
    assert services.handover_tick(now=later) == {
        "expired": 0,
        "content_deleted": 0,
        "overdue": [],
    }


def test_the_handover_outlives_the_conversation(team, make_youth, bup):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = sent(ingrid, conversation)
    Conversation.objects.filter(id=conversation.id).delete()
    handover.refresh_from_db()
    assert handover.conversation_id is None
    assert selectors.handover_for_partner(bup, handover.id)["sections"]
    services.handover_accept(
        user=bup, handover_id=handover.id, first_meeting_at=timezone.now() + timedelta(days=1)
    )
    assert selectors.handover_for_staff(ingrid, handover.id)["handover"]["state"] == "accepted"


def test_a_warm_handover_lets_the_partner_join_the_live_chat(team, make_youth, bup, hfu):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation, reach="warm")
    assert not selectors.partner_may_join(bup, conversation.id)
    agree(handover)
    assert selectors.partner_may_join(bup, conversation.id)
    assert not selectors.partner_may_join(hfu, conversation.id)
    assert not selectors.partner_may_join(ingrid, conversation.id)
    services.consent_withdraw(youth=conversation.youth, handover_id=handover.id)
    assert not selectors.partner_may_join(bup, conversation.id)


# -- anonymous consultation --------------------------------------------------------------------


def test_an_anonymous_consultation_is_asked_answered_once_and_audited(team, bup, hfu):
    ingrid, sara = team
    question = "En 15-åring med mye skolevegring: tar dere slike uten fastlege?"
    consultation = services.consultation_ask(user=ingrid, service="bup-vestfold", question=question)
    row_question = raw_column("handover_consultation", "question", consultation.id)
    assert b"skolevegring" not in row_question
    assert not hasattr(Consultation, "youth") and not hasattr(Consultation, "conversation")
    [view] = selectors.consultations_for_partner(bup)
    assert view["question"] == question and view["answer"] is None
    assert selectors.consultations_for_partner(hfu) == []
    assert error_code(
        services.consultation_answer, user=hfu, consultation_id=consultation.id, answer="Ja"
    ) == ("not_found")
    assert error_code(
        services.consultation_answer, user=sara, consultation_id=consultation.id, answer="Ja"
    ) == ("not_allowed")
    assert error_code(
        services.consultation_ask, user=bup, service="bup-vestfold", question="?"
    ) == ("not_allowed")
    services.consultation_answer(
        user=bup, consultation_id=consultation.id, answer="Ja, via kommunepsykologen."
    )
    assert error_code(
        services.consultation_answer, user=bup, consultation_id=consultation.id, answer="Igjen"
    ) == ("already_answered")
    [mine] = selectors.consultations_for_staff(ingrid)
    assert mine["answer"] == "Ja, via kommunepsykologen." and mine["answered_by"] == "Kari, BUP"
    events = AuditEvent.objects.filter(action__startswith="consultation.")
    assert [(e.action, e.actor_kind, e.conversation_id) for e in events] == [
        ("consultation.ask", "staff", None),
        ("consultation.answer", "partner", None),
    ]


def test_deleting_a_youth_with_a_sent_handover_deletes_it_cleanly(team, make_youth, bup):
    """Retention deletes stale identities: their handovers and consents go with them."""
    from chat.models import Youth

    ingrid, _ = team
    handover = sent(ingrid, chatting(make_youth, ingrid))
    Youth.objects.filter(id=handover.youth_id).delete()
    assert not Handover.objects.filter(id=handover.id).exists()
    assert Consent.objects.filter(handover_id=handover.id).count() == 0


def test_offering_drafts_and_proposes_in_one_step_or_not_at_all(team, make_youth):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = services.handover_offer(
        user=ingrid, conversation_id=conversation.id, service="bup-vestfold", reach="warm",
        summary=SUMMARY,
    )  # fmt: skip
    assert handover.state == "proposed"
    other = chatting(make_youth, ingrid)
    code = error_code(
        services.handover_offer, user=ingrid, conversation_id=other.id, service="bup-vestfold",
        reach="warm", summary={"concern": "x"},
    )  # fmt: skip
    assert code == "incomplete"  # the proposal failed: no draft is left behind either
    assert not Handover.objects.filter(conversation=other).exists()


# -- what staff are told: the youth's answer, their reason, the guidance, the decline -----------


def staff_frames(monkeypatch, django_capture_on_commit_callbacks, action, **kwargs):
    """Run `action(**kwargs)` and return {group: frame} of the handover.update frames to staff."""
    frames = []
    monkeypatch.setattr("chat.events._send", lambda group, frame: frames.append((group, frame)))
    with django_capture_on_commit_callbacks(execute=True):
        action(**kwargs)
    return {
        group: frame["handover"]
        for group, frame in frames
        if group.startswith("staffuser.") and frame["type"] == "handover.update"
    }


def test_staff_see_the_youths_answer_reason_and_guidance_on_the_card(
    team, make_youth, monkeypatch, django_capture_on_commit_callbacks
):
    ingrid, sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    assert selectors.staff_card_for(ingrid, handover.id)["youth_answer"] is None
    cards = staff_frames(
        monkeypatch,
        django_capture_on_commit_callbacks,
        agree,
        handover=handover,
        answer="change",
        reason="Ikke skriv om søvnen",
    )
    card = cards[f"staffuser.{ingrid.id}"]
    assert card["state"] == "changes_requested"
    assert card["youth_answer"]["answer"] == "change"
    assert card["youth_answer"]["reason"] == "Ikke skriv om søvnen"
    assert card["guidance"] == ["change"]
    # The welcome list (a reconnect) says the same; a colleague outside it sees nothing.
    (listed,) = selectors.staff_handovers(ingrid)
    assert listed["youth_answer"] == card["youth_answer"] and listed["guidance"] == ["change"]
    assert selectors.staff_handovers(sara) == []

    services.handover_revise(user=ingrid, handover_id=handover.id, reach="contact", summary=SUMMARY)
    card = selectors.staff_card_for(ingrid, handover.id)
    assert card["state"] == "proposed" and card["guidance"] == []  # asked again: no advice
    agree(handover, answer="no", reason="Jeg vil ikke til BUP")
    card = selectors.staff_card_for(ingrid, handover.id)
    assert card["youth_answer"]["answer"] == "no" and card["guidance"] == ["no"]
    assert card["youth_answer"]["reason"] == "Jeg vil ikke til BUP"


def test_under_16_guidance_is_on_the_senders_card(team, make_youth, bup):
    ingrid, _sara = team
    handover = proposed(ingrid, chatting(make_youth, ingrid))
    agree(handover, age_band="under_16")
    card = selectors.staff_card_for(ingrid, handover.id)
    assert card["guidance"] == ["under_16"] and card["youth_answer"]["age_band"] == "under_16"
    assert card["youth_answer"]["reason"] is None


def test_the_sender_sees_a_declines_reason_and_alternative(
    team, make_youth, bup, make_staff, monkeypatch, django_capture_on_commit_callbacks
):
    ingrid, _sara = team
    mona = make_staff("mona", "social_worker", is_supervisor=True)
    handover = sent(ingrid, chatting(make_youth, ingrid))
    assert selectors.staff_card_for(ingrid, handover.id)["decline"] is None
    cards = staff_frames(
        monkeypatch,
        django_capture_on_commit_callbacks,
        services.handover_decline,
        user=bup,
        handover_id=handover.id,
        reason="Ventetiden er lang",
        alternative="Kommunepsykologen kan ta imot raskt",
        alternative_service="kommunepsykolog-tonsberg",
    )
    card = cards[f"staffuser.{ingrid.id}"]
    assert card["state"] == "declined"
    assert card["decline"] == {
        "reason": "Ventetiden er lang",
        "alternative": "Kommunepsykologen kan ta imot raskt",
    }
    assert card["answer"]["alternative_service"]["slug"] == "kommunepsykolog-tonsberg"
    assert selectors.staff_handovers(ingrid)[0]["decline"] == card["decline"]
    # A supervisor reads the whole handover (audited), but the card has no texts.
    assert selectors.staff_card_for(mona, handover.id)["decline"] == {
        "reason": None,
        "alternative": None,
    }
    # Once closed the texts are gone with the key.
    services.handover_close(user=ingrid, handover_id=handover.id)
    assert selectors.staff_card_for(ingrid, handover.id)["decline"] == {
        "reason": None,
        "alternative": None,
    }


# -- asking for changes, revising, asking again ---------------------------------------------------


def test_after_a_change_request_staff_revise_and_the_youth_says_yes(
    team, make_youth, bup, monkeypatch, django_capture_on_commit_callbacks
):
    ingrid, sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    first = asked(handover)
    agree(handover, answer="change", reason="Ikke skriv om søvnen")
    # Proposing anew to the same service is no way forward (one open handover per service).
    assert (
        error_code(
            services.handover_offer,
            user=ingrid,
            conversation_id=conversation.id,
            service="bup-vestfold",
            reach="contact",
            summary=SUMMARY,
        )
        == "conflict"
    )
    revised = {**SUMMARY, "concern": "Gruer seg til skolen hver morgen"}
    frames = []
    monkeypatch.setattr("chat.events._send", lambda group, frame: frames.append((group, frame)))
    with django_capture_on_commit_callbacks(execute=True):
        services.handover_revise(
            user=ingrid,
            handover_id=handover.id,
            reach="warm",
            summary=revised,
            named_person="Kari",
            scope=["concern", "own_words", "assessment", "interim_plan", "who_does_what"],
        )
    (request,) = [f for g, f in frames if g == chat_events.youth_group(conversation.youth_id)]
    assert request["type"] == "consent.request"
    texts = {s["key"]: s["text"] for s in request["handover"]["sections"]}
    assert texts["concern"] == "Gruer seg til skolen hver morgen" and "tried" not in texts
    row = Handover.objects.get(id=handover.id)
    assert (row.state, row.reach, row.named_person) == ("proposed", "warm", "Kari")
    # The answer to the old text counts no more; the new one sends it.
    assert error_code(agree, handover=handover, text_version=first) == "stale"
    assert Handover.objects.get(id=handover.id).state == "proposed"
    agree(handover)
    detail = selectors.handover_for_partner(bup, handover.id)
    assert detail["sections"][0]["text"] == "Gruer seg til skolen hver morgen"
    assert [a for a in actions(handover) if a != "handover.read"] == [
        "handover.draft",
        "handover.propose",
        "consent.answer",
        "handover.revise",
        "consent.answer",
        "handover.send",
    ]


def test_bad_revisions_change_nothing(team, make_youth, bup):
    ingrid, sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)

    def snapshot():
        row = Handover.objects.get(id=handover.id)
        return (row.state, row.summary, row.scope, row.reach, row.named_person, actions(handover))

    before = snapshot()
    good = {"user": ingrid, "handover_id": handover.id, "reach": "contact", "summary": SUMMARY}
    for changes, code in [
        ({"user": sara}, "not_allowed"),  # not hers
        ({"handover_id": "nope"}, "not_found"),
        ({"reach": "pigeon"}, "bad_reach"),
        ({"summary": {"concern": "Bare dette"}}, "incomplete"),
        ({"summary": {**SUMMARY, "secret": "x"}}, "bad_summary"),
        ({"scope": ["tried", "nowhere"]}, "bad_scope"),
        ({"named_person": "K" * 81}, "too_long"),
    ]:
        assert error_code(services.handover_revise, **{**good, **changes}) == code, changes
        assert snapshot() == before, changes
    agree(handover)
    before = snapshot()
    assert error_code(services.handover_revise, **good) == "not_editable"  # sent: the yes stands
    assert snapshot() == before


# -- supervisors keep the overdue flag after a reconnect -------------------------------------------


def test_a_supervisor_sees_overdue_handovers_in_the_welcome_list(team, make_youth, bup, make_staff):
    ingrid, sara = team
    mona = make_staff("mona", "social_worker", is_supervisor=True)
    handover = sent(ingrid, chatting(make_youth, ingrid))
    late = handover.reply_expected_by + timedelta(hours=1)
    assert selectors.staff_handovers(mona, now=late - timedelta(hours=2)) == []
    services.handover_tick(now=late)
    (card,) = selectors.staff_handovers(mona, now=late)
    assert card["id"] == str(handover.id) and card["overdue"] and card["overdue_flagged_at"]
    assert "summary" not in card and card["youth_answer"]["reason"] is None
    assert selectors.staff_handovers(sara, now=late) == []  # not a supervisor
    services.handover_accept(
        user=bup, handover_id=handover.id, first_meeting_at=late + timedelta(days=1), now=late
    )
    assert selectors.staff_handovers(mona, now=late) == []  # answered: no longer overdue


# -- the consent's text version is the text shown ------------------------------------------------


def test_a_changed_wording_makes_an_old_answer_stale(team, make_youth, monkeypatch):
    ingrid, _sara = team
    conversation = chatting(make_youth, ingrid)
    handover = proposed(ingrid, conversation)
    old = asked(handover)
    assert asked(handover) == old  # the same text, the same version
    with translation.override("nb"):
        assert asked(handover) != old  # the same question in bokmål is another text
    monkeypatch.setitem(
        selectors.CONSENT_WORDING, "question", "May we send this to {service} for {days} days?"
    )
    assert asked(handover) != old
    assert error_code(agree, handover=handover, text_version=old) == "stale"
    assert Handover.objects.get(id=handover.id).state == "proposed"
    assert not Consent.objects.filter(handover=handover).exists()
    assert "consent.answer" not in actions(handover)
    agree(handover)  # answering the wording shown now works
    assert Handover.objects.get(id=handover.id).state == "sent"


def test_the_limits_of_a_consent_agree_on_the_page_the_protocol_and_the_service():
    limits = {
        field.name: field.type.max_length
        for field in msgspec.inspect.type_info(ConsentAnswer).fields
        if field.name in ("reason", "contact")
    }
    assert limits == {"reason": services.REASON_MAX, "contact": services.CONTACT_MAX}
    script = (Path(__file__).parents[1] / "frontend/static/youthhub/js/consent.js").read_text()
    assert f"maxLength: {services.REASON_MAX}" in script
    assert f"maxLength: {services.CONTACT_MAX}" in script


# -- warm handover: the partner continues the chat ------------------------------------------------


def passable(make_youth, staff, partner) -> tuple[Conversation, Handover]:
    """A chat of `staff` with a warm handover to BUP the youth said yes to, and `partner` of
    BUP in the chat (joined after the youth's first message)."""
    from chat import services as chat_services
    from chat.actors import Actor

    conversation = chatting(make_youth, staff)
    chat_services.message_send(
        actor=Actor.for_youth(conversation.youth),
        conversation_id=conversation.id,
        client_id="before",
        text="Det Ingrid vet",
    )
    handover = sent(staff, conversation, reach="warm")
    services.handover_partner_join(user=partner, conversation_id=conversation.id)
    return conversation, Handover.objects.get(id=handover.id)


def count(metric: str, key: str = "") -> int:
    from django.db.models import Sum

    from youthhub.stats.models import Count

    return Count.objects.filter(metric=metric, key=key).aggregate(n=Sum("value"))["n"] or 0


def test_staff_pass_the_chat_to_the_partner_who_continues_and_ends_it(
    team, make_youth, bup, monkeypatch, django_capture_on_commit_callbacks
):
    """Ingrid lets go (capacity, open conversations), the youth is told who continues, Kari of
    BUP writes, reads and ends it; the chat counts once; Ingrid later reads it up to the pass."""
    from chat import selectors as chat_selectors
    from chat import services as chat_services
    from chat.actors import Actor
    from dropin import selectors as queue_selectors

    ingrid, _sara = team
    conversation, handover = passable(make_youth, ingrid, bup)
    assert selectors.staff_card(handover)["chat"] == {
        "joined": True,
        "partner": "Kari, BUP",
        "passed_at": None,
    }
    assert queue_selectors.active_counts([ingrid.id]) == {ingrid.id: 1}
    frames = []
    monkeypatch.setattr("chat.events._send", lambda group, frame: frames.append((group, frame)))
    with django_capture_on_commit_callbacks(execute=True):
        passed_handover, passed = services.handover_chat_pass(user=ingrid, handover_id=handover.id)
    row = Conversation.objects.get(id=conversation.id)
    assert (row.state, row.assigned_staff_id, row.led_by_id) == ("active", None, handover.id)
    assert passed_handover.chat_passed_by == ingrid and passed_handover.chat_passed_seq == 1
    assert passed["type"] == "passed" and passed["from"] == "Ingrid"
    assert passed["partner"] == {
        "name": "Kari, BUP",
        "service": "BUP Vestfold",
        "service_id": handover.service_id,
    }
    assert passed["conversation"]["staff"] is None
    assert passed["conversation"]["partner"] == passed["partner"]
    assert (chat_events.conversation_group(conversation.id), passed) in frames
    assert selectors.staff_card(Handover.objects.get(id=handover.id))["chat"]["passed_at"]
    # Ingrid has let go: her capacity and her open conversations no longer hold it.
    assert queue_selectors.active_counts([ingrid.id]) == {}
    assert chat_selectors.staff_open_conversations(ingrid) == []
    staff = Actor.for_staff(ingrid)
    for call in (
        lambda: chat_selectors.conversation_for(staff, conversation.id),
        lambda: chat_services.message_send(
            actor=staff, conversation_id=conversation.id, client_id="s9", text="Hei igjen"
        ),
        lambda: chat_services.conversation_end(actor=staff, conversation_id=conversation.id),
    ):
        with pytest.raises(ServiceError) as refused:
            call()
        assert refused.value.code == "not_allowed"
    # The youth's page says who is there now; the youth and Kari keep chatting.
    youth = Actor.for_youth(conversation.youth)
    welcome = chat_selectors.conversation_summary(
        chat_selectors.youth_open_conversation(conversation.youth)
    )
    assert welcome["staff"] is None and welcome["partner"]["name"] == "Kari, BUP"
    partner = Actor.for_partner(bup)
    reply, _ = chat_services.message_send(
        actor=partner, conversation_id=conversation.id, client_id="p1", text="Hei, Kari her"
    )
    assert (reply["sender"], reply["text"]) == ("partner", "Hei, Kari her")
    chat_services.message_send(
        actor=youth, conversation_id=conversation.id, client_id="y2", text="Det Kari får vite"
    )
    # Kari's read receipt is the helper's read mark the youth sees.
    frames.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            chat_services.conversation_mark_read(
                actor=partner, conversation_id=conversation.id, seq=3
            )
            == 3
        )
    assert Conversation.objects.get(id=conversation.id).staff_read_seq == 3
    assert [f for _, f in frames if f["type"] == "read"] == [
        {"type": "read", "conversation_id": str(conversation.id), "reader": "partner", "seq": 3}
    ]
    # Kari ends it: ended for everyone, audited, counted once.
    frames.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ended = chat_services.conversation_end(actor=partner, conversation_id=conversation.id)
    assert ended.state == "ended" and ended.ended_at is not None
    [ended_frame] = [f for _, f in frames if f["type"] == "ended"]
    assert (ended_frame["by"], ended_frame["state"]) == ("partner", "ended")
    assert count("contacts") == 1 and count("outcome", "ended") == 1
    steps = actions(handover)
    assert steps.index("handover.join") < steps.index("handover.chat_pass")
    assert steps.index("handover.chat_pass") < steps.index("handover.chat_end")
    end = AuditEvent.objects.get(action="handover.chat_end")
    assert (end.actor, end.actor_kind, end.conversation_id) == (bup, "partner", conversation.id)
    assert AuditEvent.objects.get(action="handover.chat_pass").actor == ingrid
    # The youth may ask for Ingrid again; she reads the chat up to the pass, not after it.
    assert [c["id"] for c in chat_selectors.previous_staff(conversation.youth)] == [ingrid.id]
    again = queue.queue_request(youth=conversation.youth, target={"staff": ingrid.id})
    again = queue.queue_accept(user=ingrid, conversation_id=again.id)
    earlier = chat_services.earlier_read(
        user=ingrid, conversation_id=again.id, earlier_id=conversation.id
    )
    assert [m["text"] for m in earlier["messages"]] == ["Det Ingrid vet"]


def test_every_refused_pass_changes_nothing(team, make_youth, bup):
    """Not warm, no (valid) consent, nobody joined yet, not your conversation, ended, passed
    already: each a clear code, and the database as it was."""
    from chat import services as chat_services
    from chat.actors import Actor
    from tests.conftest import db_snapshot

    ingrid, sara = team
    conversation = chatting(make_youth, ingrid)
    warm = sent(ingrid, conversation, reach="warm")
    contact = sent(ingrid, conversation, slug="hfu-tonsberg", reach="contact")
    asked_only = proposed(ingrid, conversation, slug="dps-vestfold", reach="warm")
    # A second chat: its warm handover is joined, then the consent is taken back, then it ends.
    other = chatting(make_youth, ingrid)
    withdrawn = sent(ingrid, other, reach="warm")
    services.handover_partner_join(user=bup, conversation_id=other.id)
    services.consent_withdraw(youth=other.youth, handover_id=withdrawn.id)

    def refused(code, *, user=ingrid, handover=warm, **kwargs):
        before = db_snapshot()
        assert (
            error_code(services.handover_chat_pass, user=user, handover_id=handover.id, **kwargs)
            == code
        ), (code, kwargs)
        assert db_snapshot() == before, code

    refused("not_warm", handover=contact)
    refused("no_consent", handover=asked_only)
    refused("not_joined")  # BUP has not come into the chat yet
    refused("no_consent", handover=withdrawn)
    services.handover_partner_join(user=bup, conversation_id=conversation.id)
    refused("consent_expired", now=timezone.now() + timedelta(days=31))
    refused("not_allowed", user=sara)  # not her conversation
    refused("not_allowed", user=bup)  # partners do not pass chats
    refused("not_allowed", user=make_staff_supervisor())  # supervisors read, they do not act
    before = db_snapshot()
    assert error_code(services.handover_chat_pass, user=ingrid, handover_id="nope") == "not_found"
    assert db_snapshot() == before
    chat_services.conversation_end(actor=Actor.for_youth(other.youth), conversation_id=other.id)
    refused("closed", handover=Handover.objects.get(id=withdrawn.id))
    services.handover_chat_pass(user=ingrid, handover_id=warm.id)
    refused("already_passed")
    refused("not_allowed", user=sara)


def make_staff_supervisor():
    from youthhub.staff.services import staff_create_or_update

    return staff_create_or_update(
        username="siri", password=PASSWORD, role="psychologist", is_supervisor=True
    ).user


def test_a_partner_ends_only_a_chat_passed_to_their_service(team, make_youth, bup, hfu):
    from chat import services as chat_services
    from chat.actors import Actor
    from tests.conftest import db_snapshot

    ingrid, _sara = team
    conversation, handover = passable(make_youth, ingrid, bup)
    kari, helsestasjonen = Actor.for_partner(bup), Actor.for_partner(hfu)

    def refused(code, actor, **kwargs):
        before = db_snapshot()
        with pytest.raises(ServiceError) as exc:
            chat_services.conversation_end(actor=actor, conversation_id=conversation.id, **kwargs)
        assert exc.value.code == code
        assert db_snapshot() == before

    refused("not_allowed", kari)  # Ingrid still leads it
    before = db_snapshot()
    assert (
        chat_services.conversation_mark_read(actor=kari, conversation_id=conversation.id, seq=1)
        == 1
    )  # a partner's read counts only once they lead the chat: nothing stored
    assert db_snapshot() == before
    services.handover_chat_pass(user=ingrid, handover_id=handover.id)
    refused("not_allowed", helsestasjonen)  # another service's partner is not in it
    refused("not_allowed", kari, tags=["family"])  # tags and triage are staff's
    refused("not_allowed", kari, triage="red")
    chat_services.conversation_end(actor=kari, conversation_id=conversation.id)
    refused("not_allowed", kari)  # ended: nobody of the service is in it any more
    # Deleting the identity (as retention does a stale one) takes its chats and handovers
    # with it, a passed one too.
    from chat.models import Youth

    Youth.objects.filter(id=conversation.youth_id).delete()
    assert not Conversation.objects.filter(id=conversation.id).exists()
    assert not Handover.objects.filter(id=handover.id).exists()


def test_once_passed_to_one_service_another_services_partner_is_out(team, make_youth, bup, hfu):
    """Two warm handovers of one chat, both services joined for an introduction with Ingrid
    present: passed to BUP, it is BUP's chat, and the youth clinic's partner is no longer in
    it (neither writing nor joining again)."""
    from chat import services as chat_services
    from chat.actors import Actor

    ingrid, _sara = team
    conversation, handover = passable(make_youth, ingrid, bup)
    sent(ingrid, conversation, reach="warm", slug="hfu-tonsberg")
    services.handover_partner_join(user=hfu, conversation_id=conversation.id)
    assert selectors.partner_may_join(hfu, conversation.id)
    services.handover_chat_pass(user=ingrid, handover_id=handover.id)
    assert selectors.partner_may_join(bup, conversation.id)
    assert not selectors.partner_may_join(hfu, conversation.id)
    with pytest.raises(ServiceError) as refused:
        chat_services.message_send(
            actor=Actor.for_partner(hfu), conversation_id=conversation.id, client_id="h", text="x"
        )
    assert refused.value.code == "not_allowed"
    with pytest.raises(ServiceError) as refused:
        services.handover_partner_join(user=hfu, conversation_id=conversation.id)
    assert refused.value.code == "not_allowed"


def test_a_called_ticket_is_passed_only_once_the_youth_came(team, make_youth, bup, arena):
    """Before the youth came to the room nobody can mark them arrived once staff let go: the
    pass waits for it, and the refusal changes nothing."""
    from tests.conftest import db_snapshot

    ingrid, _sara = team
    youth, _ = make_youth()
    ticket = queue.queue_request(youth=youth, site_slug="tonsberg", target={"staff": ingrid.id})
    ticket = queue.queue_accept(user=ingrid, conversation_id=ticket.id, room="Rom 2")
    handover = sent(ingrid, ticket, reach="warm")
    services.handover_partner_join(user=bup, conversation_id=ticket.id)
    before = db_snapshot()
    with pytest.raises(ServiceError) as refused:
        services.handover_chat_pass(user=ingrid, handover_id=handover.id)
    assert refused.value.code == "not_arrived"
    assert db_snapshot() == before
    queue.dropin_arrived(user=ingrid, conversation_id=ticket.id)
    services.handover_chat_pass(user=ingrid, handover_id=handover.id)
    assert Conversation.objects.get(id=ticket.id).led_by_id == handover.id


@pytest.mark.parametrize("how", ["withdraw", "decline", "expire"])
def test_a_passed_chat_ends_when_the_partner_may_no_longer_be_in_it(
    team, make_youth, bup, how, monkeypatch, django_capture_on_commit_callbacks
):
    """Nobody would be left to answer the youth: the partner's socket is told to close first,
    then the chat ends; counted once."""
    ingrid, _sara = team
    conversation, handover = passable(make_youth, ingrid, bup)
    services.handover_chat_pass(user=ingrid, handover_id=handover.id)
    frames = []
    monkeypatch.setattr("chat.events._send", lambda group, frame: frames.append((group, frame)))
    with django_capture_on_commit_callbacks(execute=True):
        if how == "withdraw":
            services.consent_withdraw(youth=conversation.youth, handover_id=handover.id)
        elif how == "decline":
            services.handover_decline(
                user=bup, handover_id=handover.id, reason="Fullt", alternative="Fastlegen"
            )
        else:
            services.handover_tick(now=timezone.now() + timedelta(days=31))
    row = Conversation.objects.get(id=conversation.id)
    assert row.state == "ended" and row.led_by_id == handover.id
    kinds = [(group.split(".")[0], frame["type"]) for group, frame in frames]
    closed_for_partner = kinds.index(("partner", "handover.update"))
    ended = kinds.index(("conv", "ended"))
    assert closed_for_partner < ended
    by = {"withdraw": "youth", "decline": "partner", "expire": "system"}[how]
    assert frames[ended][1]["by"] == by
    assert count("contacts") == 1 and count("outcome", "ended") == 1


def test_retention_keeps_a_partner_led_chat_like_any_open_one(team, make_youth, bup):
    from youthhub import retention

    ingrid, _sara = team
    conversation, handover = passable(make_youth, ingrid, bup)
    services.handover_chat_pass(user=ingrid, handover_id=handover.id)
    Conversation.objects.filter(id=conversation.id).update(
        created_at=timezone.now() - timedelta(days=400)
    )
    later = timezone.now() + timedelta(days=400)
    assert retention.destroy_old_content(later) == 0
    assert retention.delete_old_conversations(later) == 0
    assert Conversation.objects.filter(id=conversation.id, state="active").exists()
    from chat import selectors as chat_selectors

    assert chat_selectors.data_key(conversation.id) is not None
