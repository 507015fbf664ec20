"""The one queue on the database: choices, ordering, crisis, capacity, drop-in, estimates."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.errors import ServiceError
from chat.models import Conversation, Youth
from dropin import selectors, services
from dropin.broadcast import crisis_alert_frame
from dropin.hours import OSLO
from dropin.models import OpeningException, TicketCounter
from dropin.waits import estimate_wait, mean_handle_seconds
from tests.conftest import put_on_duty
from youthhub.staff.models import StaffProfile

pytestmark = pytest.mark.django_db


def error_code(fn, **kwargs) -> str:
    with pytest.raises(ServiceError) as exc:
        fn(**kwargs)
    return exc.value.code


@pytest.fixture
def jonas(arena, make_staff):
    """A peer who works at the arena but is off today."""
    jonas = make_staff("jonas", "peer")
    jonas.staff_profile.sites.add(arena)
    return jonas


def request(make_youth, **kwargs) -> Conversation:
    youth, _ = make_youth()
    return services.queue_request(youth=youth, **kwargs)


def staff_view(user):
    profile = user.staff_profile
    scope = selectors.staff_scope(profile, 0)
    return selectors.personalise(selectors.staff_queue(selectors.queue_state()), scope)


def test_a_named_request_waits_for_that_person_and_is_listed_first_for_them(team, make_youth):
    ingrid, sara = team
    first = request(make_youth)  # first available, older
    named = request(make_youth, target={"staff": sara.id})
    assert named.requested_staff == sara and named.pool == first.pool and named.pool is not None
    # Sara sees the youth who asked for her first; Ingrid sees it but may not take it.
    assert [r["conversation_id"] for r in staff_view(sara)] == [str(named.id), str(first.id)]
    ingrid_rows = {r["conversation_id"]: r for r in staff_view(ingrid)}
    assert ingrid_rows[str(named.id)]["claimable"] is False
    assert ingrid_rows[str(first.id)]["claimable"] is True
    assert error_code(services.queue_accept, user=ingrid, conversation_id=named.id) == "not_chosen"
    named.refresh_from_db()
    assert named.state == "queued"
    assert services.queue_accept(user=sara, conversation_id=named.id).assigned_staff == sara


def test_bad_choices_get_clear_errors_and_change_nothing(team, jonas, make_youth, make_staff):
    ingrid, sara = team
    elsewhere = make_staff("lise", "psychologist")  # works at no arena of this pool
    put_on_duty(elsewhere)
    youth, _ = make_youth()
    cases = [
        ({"staff": 999999}, "bad_target"),
        ({"staff": elsewhere.id}, "bad_target"),
        ({"staff": jonas.id}, "not_on_duty"),
        ({"role": "astronaut"}, "bad_target"),
        ({"role": "specialist"}, "bad_target"),  # nobody in that role works here
        ({"what": 1}, "bad_target"),
    ]
    for target, code in cases:
        assert error_code(services.queue_request, youth=youth, target=target) == code, target
    assert error_code(services.queue_request, youth=youth, site_slug="nowhere") == "bad_site"
    assert error_code(services.queue_request, youth=youth, pool_slug="nowhere") == "bad_site"
    assert error_code(services.queue_request, youth=youth, topic="Ola Nordmann") == "bad_topic"
    assert Conversation.objects.count() == 0
    # A role that works here but is off today may be chosen (the estimate says nobody is on).
    peer = services.queue_request(youth=youth, target={"role": "peer"})
    assert selectors.queued_frame_for(peer)["eta_seconds"] is None
    assert error_code(services.queue_request, youth=youth) == "already_queued"
    assert Conversation.objects.count() == 1


def test_ordering_is_crisis_then_asked_for_me_then_waiting_time(team, make_youth):
    ingrid, sara = team
    a = request(make_youth)
    b = request(make_youth, target={"staff": ingrid.id})
    c = request(make_youth, target={"role": "health_nurse"})
    d = request(make_youth)
    services.queue_crisis(youth=d.youth)
    assert [r["conversation_id"] for r in staff_view(ingrid)] == [str(x.id) for x in (d, b, a, c)]
    assert [r["conversation_id"] for r in staff_view(sara)] == [str(x.id) for x in (d, c, a, b)]
    # Claiming next takes them in that order, each person their own.
    assert services.queue_claim_next(user=ingrid).id == d.id
    assert services.queue_claim_next(user=ingrid).id == b.id
    assert services.queue_claim_next(user=sara).id == c.id
    assert services.queue_claim_next(user=sara).id == a.id
    assert error_code(services.queue_claim_next, user=sara) == "queue_empty"


def test_positions_count_who_competes_for_the_same_staff(team, make_youth):
    ingrid, sara = team
    a = request(make_youth, target={"staff": ingrid.id})
    b = request(make_youth, target={"staff": sara.id})
    c = request(make_youth)
    d = request(make_youth, target={"staff": sara.id})
    position = {
        f["conversation_id"]: f["position"] for f in map(selectors.queued_frame_for, (a, b, c, d))
    }
    assert position == {str(a.id): 1, str(b.id): 1, str(c.id): 3, str(d.id): 3}


def test_crisis_goes_to_the_front_and_anyone_serving_may_take_it(team, make_youth):
    ingrid, sara = team
    waiting = request(make_youth)
    named = request(make_youth, target={"staff": sara.id})
    flagged = services.queue_crisis(youth=named.youth)
    assert flagged.id == named.id and flagged.crisis and flagged.crisis_at
    assert selectors.queued_frame_for(named)["position"] == 1
    assert selectors.queued_frame_for(waiting)["position"] == 2
    # Ingrid was not chosen, but in a crisis she may answer.
    assert services.queue_accept(user=ingrid, conversation_id=named.id).assigned_staff == ingrid


def test_crisis_without_a_conversation_starts_one(team, make_youth):
    youth, _ = make_youth()
    conversation = services.queue_crisis(youth=youth)
    assert conversation.state == "queued" and conversation.crisis and conversation.target == "any"
    assert services.queue_crisis(youth=youth).id == conversation.id  # twice: same, no error


def test_changing_the_choice_keeps_the_place(team, make_youth):
    ingrid, sara = team
    first = request(make_youth, target={"staff": ingrid.id})
    second = request(make_youth, target={"staff": ingrid.id})
    before = second.created_at
    services.queue_change_target(youth=second.youth, target={"role": "health_nurse"})
    second.refresh_from_db()
    assert second.created_at == before and second.requested_role == "health_nurse"
    services.queue_change_target(youth=second.youth, target="any")
    # Back in line for everyone, still behind the one who came first.
    assert selectors.queued_frame_for(second)["position"] == 2
    assert selectors.queued_frame_for(first)["position"] == 1
    other, _ = make_youth()
    assert error_code(services.queue_change_target, youth=other, target="any") == "no_conversation"


def test_a_named_request_gets_a_switch_offer_after_the_configured_wait(team, make_youth, settings):
    ingrid, _ = team
    settings.YOUTHHUB_NAMED_WAIT_SECONDS = 300
    named = request(make_youth, target={"staff": ingrid.id})
    anyone = request(make_youth)
    assert services.queue_tick(now=timezone.now() + timedelta(seconds=200))["switch_offers"] == 0
    later = timezone.now() + timedelta(seconds=301)
    assert services.queue_tick(now=later)["switch_offers"] == 1
    assert services.queue_tick(now=later)["switch_offers"] == 0  # once
    named.refresh_from_db()
    anyone.refresh_from_db()
    assert named.switch_offered_at and anyone.switch_offered_at is None
    assert named.requested_staff == ingrid  # never switched without asking
    frame = selectors.queued_frame_for(named)
    assert frame["switch_offer"] is True and frame["target"] == {"staff": ingrid.id}
    services.queue_change_target(youth=named.youth, target="any")
    assert selectors.queued_frame_for(named)["switch_offer"] is False


def test_the_switch_offer_counts_from_when_the_named_person_was_chosen(team, make_youth, settings):
    """Waiting a while for anyone, then choosing Ingrid, must not bring an offer at once."""
    ingrid, _ = team
    settings.YOUTHHUB_NAMED_WAIT_SECONDS = 300
    waiting = request(make_youth)
    Conversation.objects.filter(pk=waiting.pk).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    services.queue_change_target(youth=waiting.youth, target={"staff": ingrid.id}, topic="school")
    assert services.queue_tick(now=timezone.now() + timedelta(seconds=60))["switch_offers"] == 0
    assert services.queue_tick(now=timezone.now() + timedelta(seconds=301))["switch_offers"] == 1
    waiting.refresh_from_db()
    assert waiting.topic == "school"
    assert (
        error_code(services.queue_change_target, youth=waiting.youth, target="any", topic="x")
        == "bad_topic"
    )
    waiting.refresh_from_db()
    assert waiting.requested_staff == ingrid  # the refused change changed nothing


def test_crisis_alerts_reach_those_serving_the_queue_the_assigned_one_and_supervisors(
    team, make_youth, make_staff
):
    ingrid, sara = team
    elsewhere = selectors.staff_scope(make_staff("lise", "psychologist").staff_profile)
    boss = selectors.staff_scope(
        make_staff("mona", "social_worker", is_supervisor=True).staff_profile
    )
    ingrid_scope = selectors.staff_scope(ingrid.staff_profile)
    sara_scope = selectors.staff_scope(sara.staff_profile)
    waiting = services.queue_crisis(youth=make_youth()[0])
    alert = crisis_alert_frame(waiting)
    assert [
        selectors.alert_concerns(alert, s) for s in (ingrid_scope, sara_scope, elsewhere, boss)
    ] == [
        True,
        True,
        False,
        True,
    ]
    services.queue_accept(user=sara, conversation_id=waiting.id)
    waiting.refresh_from_db()
    during_chat = crisis_alert_frame(waiting)
    assert [
        selectors.alert_concerns(during_chat, s)
        for s in (ingrid_scope, sara_scope, elsewhere, boss)
    ] == [
        False,
        True,
        False,
        True,
    ]


def test_capacity_limits_taking_and_nothing_changes(team, make_youth):
    ingrid, _ = team
    ingrid.staff_profile.capacity = 1
    ingrid.staff_profile.save()
    first, second = request(make_youth), request(make_youth)
    services.queue_accept(user=ingrid, conversation_id=first.id)
    assert (
        error_code(services.queue_accept, user=ingrid, conversation_id=second.id) == "at_capacity"
    )
    assert error_code(services.queue_claim_next, user=ingrid) == "at_capacity"
    second.refresh_from_db()
    assert second.state == "queued" and second.assigned_staff is None


def test_staff_take_only_from_queues_they_serve(team, make_youth, make_staff):
    outsider = put_on_duty(make_staff("lise", "psychologist"))  # no arena
    waiting = request(make_youth)
    assert (
        error_code(services.queue_accept, user=outsider, conversation_id=waiting.id)
        == "not_allowed"
    )
    assert error_code(services.queue_claim_next, user=outsider) == "queue_empty"


def test_dropin_tickets_are_numbered_per_arena_and_day(team, make_youth, arena):
    a = request(make_youth, site_slug="tonsberg")
    b = request(make_youth, site_slug="tonsberg", target={"role": "psychologist"})
    assert (a.ticket, b.ticket) == ("B-1", "B-2")
    assert a.channel == "dropin" and a.site == arena and a.pool is None
    assert TicketCounter.objects.get(site=arena).last == 2
    frame = selectors.queued_frame_for(b)
    assert frame["ticket"] == "B-2" and frame["channel"] == "dropin"
    # Drop-in and chat share one staff list.
    chat = request(make_youth)
    ingrid = team[0]
    assert {r["conversation_id"] for r in staff_view(ingrid)} == {
        str(a.id),
        str(b.id),
        str(chat.id),
    }


def test_a_called_ticket_nobody_comes_for_becomes_a_no_show_and_the_youth_can_rejoin(
    team, make_youth, settings
):
    ingrid, sara = team
    settings.YOUTHHUB_NOSHOW_SECONDS = 600
    ticket = request(make_youth, site_slug="tonsberg")
    came = request(make_youth, site_slug="tonsberg")
    called = services.queue_accept(user=ingrid, conversation_id=ticket.id, room="Rom 2")
    assert called.room == "Rom 2" and called.state == "active"
    services.queue_accept(user=sara, conversation_id=came.id)
    services.dropin_arrived(user=sara, conversation_id=came.id)
    assert services.queue_tick(now=timezone.now() + timedelta(seconds=599))["no_shows"] == 0
    assert services.queue_tick(now=timezone.now() + timedelta(seconds=601))["no_shows"] == 1
    ticket.refresh_from_db()
    came.refresh_from_db()
    assert ticket.state == "no_show" and came.state == "active"
    again = services.queue_request(youth=ticket.youth, site_slug="tonsberg")
    assert again.ticket == "B-3"
    assert error_code(services.dropin_no_show, user=sara, conversation_id=came.id) == "conflict"
    chat = request(make_youth)
    services.queue_accept(user=sara, conversation_id=chat.id)
    assert error_code(services.dropin_arrived, user=sara, conversation_id=chat.id) == "not_dropin"


def test_a_closed_arena_refuses_tickets_but_the_chat_takes_a_message(arena, make_youth, make_staff):
    make_staff("ingrid").staff_profile.sites.add(arena)  # works here, not on now
    today = timezone.now().astimezone(OSLO).date()
    OpeningException.objects.create(site=arena, date=today, note="closed today")
    youth, _ = make_youth()
    assert error_code(services.queue_request, youth=youth, site_slug="tonsberg") == "arena_closed"
    left = services.queue_request(youth=youth)
    assert left.after_hours
    frame = selectors.queued_frame_for(left)
    assert frame["open"] is False and frame["opens_at"] and frame["eta_seconds"] is None


def test_status_and_presence_decide_who_is_on(team, make_youth):
    ingrid, sara = team
    overview = selectors.overview(pool=team[0].staff_profile.sites.first().pool)
    assert {s["display_name"] for s in overview["staff"]} == {"Ingrid", "Sara"}
    assert {r["role"] for r in overview["roles"]} == {"psychologist", "health_nurse"}
    services.staff_set_status(user=sara, status="away")
    profile = ingrid.staff_profile
    profile.seen_at = timezone.now() - timedelta(minutes=10)  # dashboard closed long ago
    profile.save()
    pool = sara.staff_profile.sites.first().pool
    assert selectors.overview(pool=pool)["staff"] == []
    assert error_code(services.staff_set_status, user=sara, status="asleep") == "bad_status"
    services.staff_seen(user=ingrid)
    assert [s["display_name"] for s in selectors.overview(pool=pool)["staff"]] == ["Ingrid"]


def test_a_heartbeat_broadcasts_the_queue_only_when_it_brings_someone_back(
    team, django_capture_on_commit_callbacks
):
    ingrid, _ = team
    profile = StaffProfile.objects.get(user=ingrid)

    def seen(ago: timedelta) -> list:
        StaffProfile.objects.filter(pk=profile.pk).update(seen_at=timezone.now() - ago)
        with django_capture_on_commit_callbacks() as published:
            services.staff_seen(user=ingrid)
        profile.refresh_from_db()
        assert timezone.now() - profile.seen_at < timedelta(seconds=5)  # written either way
        return published

    assert seen(timedelta(seconds=40)) == []  # on all along: nobody's view changes
    assert len(seen(timedelta(minutes=10))) == 1  # back on now: the queue goes out
    StaffProfile.objects.filter(pk=profile.pk).update(status="away")
    assert seen(timedelta(minutes=10)) == []  # away: not on, whatever the heartbeat


def test_overview_gives_each_person_and_role_a_queue_and_an_estimate(team, make_youth, settings):
    ingrid, sara = team
    settings.YOUTHHUB_DEFAULT_HANDLE_MINUTES = 20
    pool = ingrid.staff_profile.sites.first().pool
    for _ in range(7):  # fills both (3 + 3) and leaves one waiting
        c = request(make_youth, target={"staff": ingrid.id})
        if Conversation.objects.filter(assigned_staff=ingrid, state="active").count() < 3:
            services.queue_accept(user=ingrid, conversation_id=c.id)
    card = {s["display_name"]: s for s in selectors.overview(pool=pool)["staff"]}
    assert card["Ingrid"]["free_places"] == 0 and card["Sara"]["free_places"] == 3
    assert card["Ingrid"]["queue_length"] == 4
    assert card["Sara"]["queue_length"] == 0 and card["Sara"]["eta_seconds"] == 60
    # Four ahead, no free place, three places each freeing every 20 minutes.
    assert card["Ingrid"]["eta_seconds"] == 60 + 5 * 20 * 60 // 3
    low, high = card["Ingrid"]["eta_range"]
    assert low < card["Ingrid"]["eta_seconds"] < high
    assert card["Ingrid"]["interests"] == [] and "bio" in card["Ingrid"]


def test_wait_estimate_arithmetic():
    assert estimate_wait(ahead=0, slots=0, busy=0, handle_seconds=600) is None
    assert estimate_wait(ahead=2, slots=6, busy=3, handle_seconds=600).seconds == 60
    assert estimate_wait(ahead=3, slots=6, busy=3, handle_seconds=600).seconds == 60 + 100
    assert estimate_wait(ahead=9, slots=6, busy=6, handle_seconds=600).seconds == 60 + 1000
    assert mean_handle_seconds([1, 2], default=99) == 99
    assert mean_handle_seconds([10] * 9 + [1000], default=99) == 10  # the longest 10 % trimmed


def test_a_refused_kiosk_ticket_leaves_nothing_behind(team, client):
    before = Youth.objects.count()
    response = client.post(
        "/api/queue/dropin/tonsberg/ticket",
        {"target": {"role": "wizard"}},
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_target"
    response = client.post("/api/queue/dropin/atlantis/ticket", {}, content_type="application/json")
    assert response.json()["error"]["code"] == "bad_site"
    response = client.post(
        "/api/queue/dropin/tonsberg/ticket", "[", content_type="application/json"
    )
    assert response.json()["error"]["code"] == "bad_json"
    assert Youth.objects.count() == before and Conversation.objects.count() == 0
    response = client.post("/api/queue/dropin/tonsberg/ticket", {}, content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert body["ticket"] == "B-1" and "#resume=" in body["follow_url"] and "<svg" in body["qr_svg"]
    # The ticket's identity is the one the QR code's return code resumes.
    youth = Youth.objects.get()
    assert youth.return_code_selector == body["return_code"].replace("-", "")[:4]


def test_overview_endpoint_answers_for_the_pool_or_an_arena(team, client):
    chat = client.get("/api/queue/overview").json()
    assert chat["pool"] == "vestfold"
    assert {s["display_name"] for s in chat["staff"]} == {"Ingrid", "Sara"}
    assert client.get("/api/queue/overview?site=tonsberg").json()["channel"] == "dropin"
    assert client.get("/api/queue/overview?site=atlantis").status_code == 400
    assert client.get("/api/queue/overview?pool=atlantis").json()["error"]["code"] == "bad_site"


def test_staff_cards_take_only_known_interests_and_languages(make_staff):
    from django.core.exceptions import ValidationError

    from youthhub.staff.services import staff_create_or_update

    for card in ({"interests": ["knitting"]}, {"languages": ["xx"]}, {"phone": "123"}):
        with pytest.raises(ValidationError):
            staff_create_or_update(
                username="lise", password="correct-horse-battery-42", role="peer", card=card
            )
    assert not StaffProfile.objects.filter(user__username="lise").exists()
    profile = staff_create_or_update(
        username="lise",
        password="correct-horse-battery-42",
        role="peer",
        card={"bio": "Hei!", "interests": ["music"], "languages": ["nb", "uk"], "room": "Rom 5"},
    )
    assert profile.youth_card()["interests"] == ["music"] and profile.room == "Rom 5"


def test_held_timers_skip_their_ticks_until_the_hold_ends(team, make_youth, settings):
    """A simulation replaying the past holds the live timers: nothing of its called tickets may
    be ended as a no-show by a worker ticking on the real clock."""
    from dropin import ticker

    ingrid, _ = team
    settings.YOUTHHUB_NOSHOW_SECONDS = 60
    ticket = request(make_youth, site_slug="tonsberg")
    services.queue_accept(user=ingrid, conversation_id=ticket.id, room="Rom 2")
    Conversation.objects.filter(pk=ticket.pk).update(
        assigned_at=timezone.now() - timedelta(minutes=5)
    )
    services.timers_hold(name="simulate_traffic", until=timezone.now() + timedelta(minutes=1))
    assert ticker.tick() is False
    ticket.refresh_from_db()
    assert ticket.state == "active"
    # A hold that ran out (a crashed run) no longer holds anything.
    services.timers_hold(name="simulate_traffic", until=timezone.now() - timedelta(seconds=1))
    assert ticker.tick() is True
    ticket.refresh_from_db()
    assert ticket.state == "no_show"
    services.timers_release(name="simulate_traffic")
    assert not selectors.timers_held(now=timezone.now() - timedelta(days=1))


def test_the_arena_poster_qr_is_an_svg_document_an_img_can_show(arena, client):
    from xml.etree import ElementTree

    response = client.get("/api/queue/dropin/tonsberg/qr.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"  # an <img> needs the namespace
    assert client.get("/api/queue/dropin/atlantis/qr.svg").status_code == 404


def test_out_of_range_ids_and_bad_rooms_are_clear_errors(team, make_youth):
    """Ids that cannot be a row (SQLite would overflow) and rooms no database can store are
    refused by the services themselves, whatever the caller (socket, kiosk HTTP)."""
    ingrid, _ = team
    youth, _ = make_youth()
    for staff_id in (2**63, 0, -1, True, 1.0):
        assert (
            error_code(services.queue_request, youth=youth, target={"staff": staff_id})
            == "bad_target"
        )
    ticket = request(make_youth)
    for room in ("Rom\x004", "x" * 41, 7):
        assert (
            error_code(services.queue_accept, user=ingrid, conversation_id=ticket.id, room=room)
            == "bad_room"
        )
        assert error_code(services.queue_claim_next, user=ingrid, room=room) == "bad_room"
    ticket.refresh_from_db()
    assert ticket.state == "queued" and not Conversation.objects.exclude(state="queued").exists()
