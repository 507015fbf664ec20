"""Supervisor statistics: small numbers hidden (with complementary cells), figures from the
roll-ups, the page, CSV export of exactly what is shown, charts, the live panel, access."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from chat.actors import Actor
from chat.services import conversation_end, feedback_give
from dropin import services as queue
from tests.conftest import put_on_duty
from youthhub.stats import selectors
from youthhub.stats.models import Count
from youthhub.stats.selectors import Filters, suppress

pytestmark = pytest.mark.django_db


# -- the suppression rule ---------------------------------------------------------------------


def test_counts_below_five_are_hidden():
    shown, total = suppress({"a": 12, "b": 7, "c": 9})
    assert shown == {"a": 12, "b": 7, "c": 9} and total == 28
    shown, total = suppress({"a": 12, "b": 3, "c": 2, "d": 9})
    assert shown == {"a": 12, "b": None, "c": None, "d": 9} and total == 26


def test_one_hidden_cell_next_to_a_total_takes_a_complementary_cell_with_it():
    # 20 - 7 - 9 = 4: with only "b" hidden the total would give it away.
    shown, total = suppress({"a": 7, "b": 4, "c": 9})
    assert total == 20
    assert shown == {"a": None, "b": None, "c": 9}  # the smallest other count is hidden too
    # Two hidden cells that add up to less than 5 still reveal too much ("1 and 0"): a third goes.
    shown, _ = suppress({"a": 1, "b": 0, "c": 6, "d": 8})
    assert shown == {"a": None, "b": None, "c": None, "d": 8}
    # Hidden cells that already add up to 5 or more need nothing more.
    shown, _ = suppress({"a": 3, "b": 4, "c": 6})
    assert shown == {"a": None, "b": None, "c": 6}


def test_a_small_total_hides_everything():
    assert suppress({"a": 2, "b": 1}) == ({"a": None, "b": None}, None)
    assert suppress({"a": 0, "b": 0}) == ({"a": None, "b": None}, None)


@pytest.mark.parametrize(
    "values",
    [
        {"a": 7, "b": 4, "c": 9},
        {"a": 1, "b": 0, "c": 6, "d": 8},
        {"a": 5, "b": 1, "c": 30},
        {"a": 0, "b": 0, "c": 0, "d": 5, "e": 5},
        {"x": 4, "y": 100},
    ],
)
def test_no_hidden_count_can_be_recovered_by_subtraction(values):
    shown, total = suppress(values)
    hidden = [k for k, v in shown.items() if v is None]
    if total is not None and hidden:
        remainder = total - sum(v for v in shown.values() if v is not None)
        # Subtraction gives only the sum of the hidden cells: zero (nobody), or 5 or more.
        assert remainder == 0 or remainder >= 5
        assert remainder == 0 or len(hidden) >= 2


# -- figures from the roll-ups ----------------------------------------------------------------


def a_day(make_youth, team, arena, n_chats: int, day_offset: int = 1):
    """`n_chats` answered and ended chats, one abandoned request: real services."""
    ingrid, sara = team
    for i in range(n_chats):
        youth, _ = make_youth()
        conversation = queue.queue_request(youth=youth, topic="school" if i % 2 else "family")
        staff = ingrid if i % 2 else sara
        if staff.staff_profile.capacity <= i:
            staff.staff_profile.capacity = 10
            staff.staff_profile.save()
        queue.queue_accept(user=staff, conversation_id=conversation.id)
        conversation_end(
            actor=Actor.for_staff(staff),
            conversation_id=conversation.id,
            tags=["stress"],
            triage="green",
            feedback=True,
        )
        feedback_give(
            youth=youth, conversation_id=conversation.id, scores={"useful": 4, "understood": 5}
        )
    youth, _ = make_youth()
    left = queue.queue_request(youth=youth)
    conversation_end(actor=Actor.for_youth(youth), conversation_id=left.id)


def today_filters(**kwargs) -> Filters:
    today = timezone.localdate()
    return Filters(start=today, end=today, **kwargs)


def test_figures_count_what_happened_and_hide_small_cells(team, arena, make_youth):
    for profile in (team[0].staff_profile, team[1].staff_profile):
        profile.capacity = 10
        profile.save()
    a_day(make_youth, team, arena, n_chats=8)
    tables = selectors.figures(today_filters())
    assert tables["by_day"].total == 9
    # 8 talked, 1 left, 0 no-shows: shown "8" next to the total 9 would give the 1 away.
    assert tables["outcome"].values == {"ended": None, "abandoned": None, "no_show": None}
    assert tables["outcome"].total == 9
    # school 4 + family 4 + none 1: every cell below 5, the total shown.
    assert tables["topic"].values["school"] is None and tables["topic"].values["family"] is None
    assert tables["topic"].total == 9
    # green 8, yellow 0, red 0: the hidden cells add up to nobody, so green can be shown.
    assert tables["triage"].values == {"green": 8, "yellow": None, "red": None}
    assert tables["fb_useful"].extra["mean"] == 4.0  # a mean of 8 answers is shown
    assert tables["wait"].extra["median"] == "0-1"
    # The whole day happened in Oslo opening hours or not: either way the two add up.
    assert tables["after_hours"].total == 9
    # No cell anywhere is a number below 5.
    for table in tables.values():
        for value in table.values.values():
            assert value is None or value >= 5 or table.name == "capacity"


def test_filters_by_channel_and_place(team, arena, make_youth):
    a_day(make_youth, team, arena, n_chats=5)
    queue.kiosk_ticket_take(site_slug="tonsberg")  # still waiting: not counted until closed
    chat_only = selectors.figures(today_filters(channel="chat"))
    assert chat_only["by_day"].total == 6
    dropin = selectors.figures(today_filters(place=f"site:{arena.pk}"))
    assert dropin["by_day"].total is None  # nothing closed yet at the arena, and 0 < 5
    pool = selectors.figures(today_filters(place=f"pool:{arena.pool_id}"))
    assert pool["by_day"].total == 6


@pytest.mark.parametrize(
    "params, message",
    [
        ({"start": "yesterday"}, "date"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "after"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "at most"),
        ({"place": "pool:999"}, "no such place"),
        ({"place": "moon:1"}, "no such place"),
        ({"channel": "phone"}, "Channel"),
    ],
)
def test_bad_filters_are_refused(params, message):
    from django.utils import translation

    with translation.override("en"), pytest.raises(selectors.BadFilter, match=message):
        selectors.parse_filters(params)


def test_counts_are_kept_by_the_hour_in_utc(team, arena, make_youth):
    a_day(make_youth, team, arena, n_chats=1)
    hours = set(Count.objects.values_list("hour", flat=True))
    assert hours and all(h.minute == h.second == h.microsecond == 0 for h in hours)
    assert all(h.utcoffset() == timedelta(0) for h in hours)


# -- pages, CSV, charts, access ---------------------------------------------------------------


@pytest.fixture
def mona(make_staff, arena):
    return put_on_duty(make_staff("mona", "social_worker", is_supervisor=True), arena)


def test_only_supervisors_see_the_statistics(client, team, mona):
    ingrid, _ = team
    urls = ["/supervisor/stats/", "/supervisor/stats.csv", "/supervisor/stats/chart/by_day.svg",
            "/supervisor/stats/now"]  # fmt: skip
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/staff/login/" in response["Location"], url
    client.force_login(ingrid)
    for url in urls:
        assert client.get(url).status_code == 403, url
    from tests.conftest import PASSWORD
    from youthhub.handover import services as handover

    handover.service_directory_seed()
    partner = handover.partner_create_or_update(
        username="bup", password=PASSWORD, service_slug="bup-vestfold"
    ).user
    client.force_login(partner)
    for url in urls:
        assert client.get(url).status_code == 403, url
    client.force_login(mona)
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.post("/supervisor/stats/").status_code == 405


def test_the_csv_holds_exactly_what_the_page_shows(client, team, mona, make_youth, arena):
    for profile in (team[0].staff_profile, team[1].staff_profile):
        profile.capacity = 10
        profile.save()
    a_day(make_youth, team, arena, n_chats=6)
    client.force_login(mona)
    today = timezone.localdate().isoformat()
    query = f"?start={today}&end={today}"
    page = client.get("/supervisor/stats/" + query)
    assert page.status_code == 200
    html = page.content.decode()
    rows = list(
        csv.reader(io.StringIO(client.get("/supervisor/stats.csv" + query).content.decode()))
    )
    assert rows[0][:3] == ["table", "row", "value"] or rows[0][:3] == ["tabell", "rad", "verdi"]
    tables = selectors.figures(
        Filters(start=date.fromisoformat(today), end=date.fromisoformat(today))
    )
    expected = []
    for table in tables.values():
        expected += [[table.title, *row] for row in table.cells()]
    body = [row for row in rows[1:] if row[1] not in ("Total", "Totalt", "median", "p90", "mean")]
    assert body == expected
    # Every hidden cell reads "<5" in both, and nothing small leaks into the CSV.
    assert "&lt;5" in html
    capacity_title = tables["capacity"].title  # averages, not counts
    for row in rows[1:]:
        if row[0] != capacity_title and row[2].isdigit():
            assert int(row[2]) >= 5, row
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]


def test_charts_are_svg_images_with_gaps_for_hidden_counts(client, mona):
    client.force_login(mona)
    response = client.get("/supervisor/stats/chart/by_hour.svg")
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.lstrip().startswith(b"<?xml") and b"<svg" in response.content
    assert client.get("/supervisor/stats/chart/nope.svg").status_code == 404
    assert client.get("/supervisor/stats/chart/by_hour.svg?start=x").status_code == 404


def test_a_bad_filter_on_the_page_is_a_clear_400(client, mona):
    client.force_login(mona)
    response = client.get("/supervisor/stats/?start=2026-13-01")
    assert response.status_code == 400 and b'role="alert"' in response.content
    response = client.get("/supervisor/stats.csv?channel=fax")
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_filter"


def test_the_live_panel_raises_a_capacity_alert(client, team, mona, make_youth, settings):
    client.force_login(mona)
    now = client.get("/supervisor/stats/now").json()
    assert now["queued"] == 0 and now["alert"] is False and now["staff_on"] == 3
    settings.YOUTHHUB_CAPACITY_ALERT_MINUTES = 0
    for _ in range(12):  # more than the places of three people on
        youth, _t = make_youth()
        queue.queue_request(youth=youth)
    now = client.get("/supervisor/stats/now").json()
    assert now["queued"] == 12 and now["alert"] is True and now["places"] == 9


def test_capacity_samples_feed_the_capacity_figure(team, arena):
    from youthhub.stats.services import capacity_sample

    moment = datetime.now(UTC).replace(second=5)
    assert capacity_sample(moment) == 1
    assert capacity_sample(moment) == 0  # once a minute
    table = selectors.figures(today_filters())["capacity"]
    local_hour = f"{moment.astimezone(timezone.get_current_timezone()).hour:02d}"
    assert table.extra["staff_on"][local_hour] == round(2 / 60, 2)
    assert table.extra["places"][local_hour] == round(6 / 60, 2)


def test_big_enough_counts_are_shown_as_they_are(team, arena, make_youth):
    for profile in (team[0].staff_profile, team[1].staff_profile):
        profile.capacity = 20
        profile.save()
    a_day(make_youth, team, arena, n_chats=12)
    a_day(make_youth, team, arena, n_chats=0)  # 1 more who left the queue: 2 in all
    a_day(make_youth, team, arena, n_chats=0)
    a_day(make_youth, team, arena, n_chats=0)
    a_day(make_youth, team, arena, n_chats=0)  # 5 left
    tables = selectors.figures(today_filters())
    # The hidden no-show count is 0: subtracting finds nobody, so nothing else is hidden.
    assert tables["outcome"].values == {"ended": 12, "abandoned": 5, "no_show": None}
    assert tables["requested"].values["any"] == 17
    assert tables["topic"].values == {
        **{key: None for key in tables["topic"].labels},
        "school": 6,
        "family": 6,
        "none": 5,
    }


def test_handovers_by_destination_and_outcome(team, arena, make_youth):
    """Six handovers sent to BUP: five accepted (offer rate), one declined with an alternative."""
    from tests.conftest import PASSWORD
    from tests.test_handover import SUMMARY, asked
    from youthhub.handover import services as handover

    handover.service_directory_seed()
    bup = handover.partner_create_or_update(
        username="bup", password=PASSWORD, service_slug="bup-vestfold"
    ).user
    ingrid, _ = team
    ingrid.staff_profile.capacity = 10
    ingrid.staff_profile.save()
    for i in range(6):
        youth, _token = make_youth()
        conversation = queue.queue_request(youth=youth, target={"staff": ingrid.id})
        queue.queue_accept(user=ingrid, conversation_id=conversation.id)
        draft = handover.handover_draft(
            user=ingrid,
            conversation_id=conversation.id,
            service="bup-vestfold",
            reach="contact",
            summary=SUMMARY,
        )
        handover.handover_propose(user=ingrid, handover_id=draft.id)
        handover.consent_answer(
            youth=youth,
            handover_id=draft.id,
            service="bup-vestfold",
            answer="agree",
            age_band="16_plus",
            text_version=asked(draft),
            contact="tlf 1",
        )
        if i < 5:
            handover.handover_accept(
                user=bup, handover_id=draft.id, first_meeting_at=timezone.now() + timedelta(days=5)
            )
        else:
            handover.handover_decline(
                user=bup, handover_id=draft.id, reason="Full", alternative="Kommunepsykolog"
            )
    tables = selectors.figures(today_filters())
    assert tables["handover_sent"].values["bup"] == 6
    assert tables["handover_accepted"].values["bup"] == 5
    assert tables["handover_accepted"].extra == {"rate": "83 %"}
    assert tables["handover_declined"].total is None  # one decline: below 5, hidden
    assert tables["handover_days"].values["<7"] == 5


def test_a_rebuild_keeps_the_handover_figures(team, arena, make_youth):
    from youthhub.stats.rebuild import stats_rebuild

    test_handovers_by_destination_and_outcome(team, arena, make_youth)
    before = sorted(Count.objects.filter(metric__startswith="handover").values_list(
        "hour", "metric", "key", "value"))  # fmt: skip
    assert before
    stats_rebuild(since=timezone.now() - timedelta(days=1))
    after = sorted(Count.objects.filter(metric__startswith="handover").values_list(
        "hour", "metric", "key", "value"))  # fmt: skip
    assert after == before
