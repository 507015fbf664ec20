"""Supervisor statistics: small numbers hidden (with complementary cells), figures from the
roll-ups, the page, CSV export of exactly what is shown, charts, the live panel, access."""

import csv
import dataclasses
import io
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from html.parser import HTMLParser
from itertools import combinations

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext

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
    # Eight answers, all 4: the hidden cells can only be zero, so the mean is shown.
    assert tables["fb_useful"].derived == {"mean": "4.0"}
    # The waiting times would give the one who left away (9 - 8): see the whole-page tests.
    assert tables["wait"].total is None and tables["wait"].derived["median"] is None
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


class PageTables(HTMLParser):
    """The statistics page as a reader sees it: every figure's title and the rows of its table
    (body and foot), and the "In short" figures."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.titles: list[str] = []
        self.summary: list[str] = []
        self._in = None
        self._row = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self._in, self._text = "h2", ""
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self._row = []
        elif tag in ("th", "td", "dd"):
            self._in, self._text = tag, ""

    def handle_endtag(self, tag):
        if tag == "h2" and self._in == "h2":
            self.titles.append(self._text.strip())
        elif tag in ("th", "td") and self._row is not None:
            self._row.append(self._text.strip())
        elif tag == "dd":
            self.summary.append(self._text.strip())
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag == "table":
            self._row = None
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._text += data


def test_the_csv_holds_exactly_what_the_page_shows(client, roomy, mona, make_youth):
    closed_requests(make_youth, 7, staff=roomy[0], scores={"useful": 4}, topic="school")
    closed_requests(make_youth, 3, staff=roomy[1], scores={"useful": 2}, topic="family")
    closed_requests(make_youth, 6)  # left the queue
    client.force_login(mona)
    today = timezone.localdate().isoformat()
    query = f"?start={today}&end={today}"
    page = client.get("/supervisor/stats/" + query)
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]
    rendered = PageTables()
    rendered.feed(page.content.decode())
    rows = list(
        csv.reader(io.StringIO(client.get("/supervisor/stats.csv" + query).content.decode()))
    )
    assert rows[0][:3] == ["tabell", "rad", "verdi"]
    # The page's tables, in order, with their titles (the figures' headings, after the
    # "Right now", filter and "In short" panels), rows, totals and derived figures.
    figure_titles = rendered.titles[3:]
    assert len(figure_titles) == len(rendered.tables) > 20
    from_page = []
    for title, table in zip(figure_titles, rendered.tables, strict=True):
        from_page += [[title, *row] for row in table[1:]]  # the first row is the header
    assert rows[1:] == from_page
    with translation.override("nb"):
        t = selectors.figures(today_filters())
        label = {**selectors.derived_labels(), "total": gettext("Total")}
    # Totals and derived figures are in both (the last rows of each table).
    assert {row[1] for row in rows[1:]} >= {label[k] for k in ("total", "median", "p90", "mean")}
    tables = {row[0]: {} for row in rows[1:]}
    for title, name, value, *_rest in rows[1:]:
        tables[title][name] = value
    # "In short" repeats figures of the tables: contacts, median and 90th percentile wait,
    # median length.
    assert rendered.summary[-4:] == [
        tables[t["by_day"].title][label["total"]],
        tables[t["wait"].title][label["median"]],
        tables[t["wait"].title][label["p90"]],
        tables[t["duration"].title][label["median"]],
    ]
    # What was shown: 16 contacts, 6 left, everyone answered within a minute; the useful
    # scores (7 x 4, 3 x 2) hide the 3 and so the 7 too, and so the mean.
    assert tables[t["by_day"].title][label["total"]] == "16"
    assert tables[t["outcome"].title][t["outcome"].labels["abandoned"]] == "6"
    assert tables[t["wait"].title][label["median"]] == t["wait"].labels["0-1"] == "0–1 min"
    useful = tables[t["fb_useful"].title]
    assert useful["4"] == useful["2"] == "<5" and useful[label["mean"]] == "–"
    # Nothing small leaks into the CSV.
    for row in rows[1:]:
        if row[0] != t["capacity"].title and row[2].isdigit():  # averages, not counts
            assert int(row[2]) >= 5, row


def test_charts_are_svg_images_with_gaps_for_hidden_counts(client, roomy, mona, make_youth):
    # 7 school chats, 2 family and 3 friends, all today: school is shown, family and friends
    # hidden ("<5", 5 together), the other topics hidden zeros. A hidden count is no bar at
    # all, never a bar of 0.
    closed_requests(make_youth, 7, staff=roomy[0], topic="school")
    closed_requests(make_youth, 2, staff=roomy[0], topic="family")
    closed_requests(make_youth, 3, staff=roomy[0], topic="friends")
    client.force_login(mona)
    today = timezone.localdate().isoformat()
    topic = selectors.figures(today_filters())["topic"]
    assert topic.values["school"] == 7 and topic.values["family"] is None
    response = client.get("/supervisor/stats/chart/topic.svg", {"start": today, "end": today})
    assert response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    bars = re.findall(r'<desc class="value">([^<]*)</desc>', svg)
    assert bars == ["7"]  # one bar: the shown count; no zero bars for hidden cells
    # The same chart with nothing hidden would draw every topic (the zeros too): the gaps come
    # from the suppression, not from the chart leaving zeros out.
    from youthhub.stats import charts

    everything = dataclasses.replace(topic, values={k: 0 for k in topic.labels} | {"school": 7})
    assert len(re.findall(r'<desc class="value">', charts.chart_svg(everything).decode())) == len(
        topic.labels
    )
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


def test_the_live_panel_follows_the_place_filter(client, team, mona, make_youth, arena):
    from dropin.services import pool_ensure

    telemark = pool_ensure(slug="telemark", name="Telemark chat")  # nobody works there
    for _i in range(3):
        youth, _t = make_youth()
        queue.queue_request(youth=youth, pool_slug="telemark")
    youth, _t = make_youth()
    queue.queue_request(youth=youth)  # the Vestfold chat
    queue.kiosk_ticket_take(site_slug="tonsberg")  # the arena's drop-in (in Vestfold)
    client.force_login(mona)

    def now(place=""):
        return client.get("/supervisor/stats/now", {"place": place}).json()

    everywhere = now()
    assert (everywhere["queued"], everywhere["staff_on"]) == (5, 3)
    # Nobody is on in Telemark: everywhere, a new request there could wait for ever.
    assert everywhere["eta_seconds"] is None and everywhere["alert"] is True
    vestfold = now(f"pool:{arena.pool_id}")
    assert (vestfold["queued"], vestfold["staff_on"], vestfold["alert"]) == (2, 3, False)
    assert vestfold["place"] == "Vestfold chat"
    assert now(f"pool:{telemark.pk}") | {"at": None} == {
        "place": "Telemark chat", "queued": 3, "staff_on": 0, "places": 0, "busy": 0,
        "eta_seconds": None, "alert": True, "at": None,
        "longest_wait_seconds": now(f"pool:{telemark.pk}")["longest_wait_seconds"],
        "alert_minutes": 20,
    }  # fmt: skip
    drop_in = now(f"site:{arena.pk}")
    assert (drop_in["queued"], drop_in["staff_on"], drop_in["place"]) == (1, 3, arena.name)
    # The page polls the panel for its own place filter.
    page = client.get("/supervisor/stats/", {"place": f"pool:{telemark.pk}"}).content.decode()
    assert f'data-url="/supervisor/stats/now?place=pool%3A{telemark.pk}"' in page
    response = client.get("/supervisor/stats/now", {"place": "pool:999"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_filter"


def test_capacity_samples_feed_the_capacity_figure(team, arena):
    from youthhub.stats.services import capacity_sample

    moment = datetime.now(UTC).replace(minute=0, second=5, microsecond=0)
    assert capacity_sample(moment) == 1
    assert capacity_sample(moment) == 0  # once a minute
    assert capacity_sample(moment + timedelta(minutes=1)) == 1
    table = selectors.figures(today_filters())["capacity"]
    local_hour = f"{moment.astimezone(timezone.get_current_timezone()).hour:02d}"
    # Two staff with three places each, for two minutes of the hour: read from the hour row.
    assert table.extra["staff_on"][local_hour] == round(2 * 2 / 60, 2)
    assert table.extra["places"][local_hour] == round(2 * 6 / 60, 2)
    from youthhub.stats.models import CapacityHour

    row = CapacityHour.objects.get()
    assert (row.hour, row.minutes, row.staff_minutes, row.place_minutes) == (
        moment.replace(second=0),
        2,
        4,
        12,
    )


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


def send_handovers(team, make_youth, *, accepted: int, declined: int):
    """Handovers sent to BUP through the real services: `accepted` said yes (a first meeting
    in five days), `declined` said no with an alternative."""
    from tests.conftest import PASSWORD
    from tests.test_handover import SUMMARY, asked
    from youthhub.handover import services as handover

    handover.service_directory_seed()
    bup = handover.partner_create_or_update(
        username="bup", password=PASSWORD, service_slug="bup-vestfold"
    ).user
    ingrid, _ = team
    ingrid.staff_profile.capacity = 20
    ingrid.staff_profile.save()
    for i in range(accepted + declined):
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
        if i < accepted:
            handover.handover_accept(
                user=bup, handover_id=draft.id, first_meeting_at=timezone.now() + timedelta(days=5)
            )
        else:
            handover.handover_decline(
                user=bup, handover_id=draft.id, reason="Full", alternative="Kommunepsykolog"
            )


def test_handovers_by_destination_and_outcome(team, arena, make_youth):
    """Twelve handovers sent to BUP: six accepted (the offer rate), six declined."""
    send_handovers(team, make_youth, accepted=6, declined=6)
    tables = selectors.figures(today_filters())
    assert tables["handover_sent"].values["bup"] == 12
    assert tables["handover_outcome"].values == {
        "met": None, "accepted": 6, "declined": 6, "open": None
    }  # fmt: skip
    assert tables["handover_outcome"].derived == {
        "accepted_share": "50 %",
        "declined_share": "50 %",
    }
    assert tables["handover_days"].values["<7"] == 6
    assert tables["handover_days"].total == 6


def test_a_rebuild_keeps_the_handover_figures(team, arena, make_youth):
    from youthhub.stats.rebuild import stats_rebuild

    send_handovers(team, make_youth, accepted=6, declined=6)
    before = sorted(Count.objects.filter(metric__startswith="handover").values_list(
        "hour", "metric", "key", "value"))  # fmt: skip
    assert before
    stats_rebuild(since=timezone.now() - timedelta(days=1))
    after = sorted(Count.objects.filter(metric__startswith="handover").values_list(
        "hour", "metric", "key", "value"))  # fmt: skip
    assert after == before


# -- the rule holds for the whole page ---------------------------------------------------------
#
# The page's numbers are tied by sums the reader knows: every table adds up to its total,
# tables of the same people share it, and these (written out here on their own, not read from
# the selectors):
SHARED_TOTAL = {
    **{name: "contacts" for name in ("by_day", "by_weekday", "by_hour", "after_hours",
                                     "outcome", "channel", "requested", "topic", "crisis")},
    "wait": "answered",  # the waiting time of everyone answered
    "duration": "outcome:ended",  # the length of every conversation that took place
    "role": "requested:role",
    "handover_sent": "handovers",
    "handover_outcome": "handovers",
    "handover_days": "handovers_accepted",  # every yes names a first meeting
}  # fmt: skip
EXTRA_SUMS = [
    ("answered", ["outcome:ended", "outcome:no_show"]),
    ("handovers_accepted", ["handover_outcome:met", "handover_outcome:accepted"]),
]


def page_equations(tables) -> list[tuple[str, list[str]]]:
    equations = list(EXTRA_SUMS)
    for name, table in tables.items():
        if table.has_total:
            total = SHARED_TOTAL.get(name, f"{name}:")
            equations.append((total, [f"{name}:{key}" for key in table.labels]))
    days = [date.fromisoformat(key) for key in tables["by_day"].labels]
    for number, weekday in enumerate(selectors.WEEKDAYS):
        equations.append(
            (f"by_weekday:{weekday}", [f"by_day:{d}" for d in days if d.weekday() == number])
        )
    return equations


def page_numbers(tables) -> dict[str, int | None]:
    numbers = {}
    for name, table in tables.items():
        if not table.has_total:
            continue
        for key in table.labels:
            numbers[f"{name}:{key}"] = table.values[key]
        numbers[SHARED_TOTAL.get(name, f"{name}:")] = table.total
    return numbers


class Reader:
    """What linear algebra gets from the shown numbers and the sums (exact fractions): the
    system reduced to the unknown numbers, in reduced row echelon form (sparse rows)."""

    def __init__(self, equations, shown: dict[str, int]):
        rows = []
        for whole, parts in equations:
            row: dict[str, Fraction] = {}
            for node, sign in [(whole, 1), *((p, -1) for p in parts)]:
                if node not in shown:
                    row[node] = row.get(node, 0) + Fraction(sign)
            rows.append({n: v for n, v in row.items() if v})
        self.rows: dict[str, dict[str, Fraction]] = {}  # pivot -> its row
        for row in rows:
            row = self.reduce(row)
            if not row:
                continue
            pivot = min(row)
            row = {n: v / row[pivot] for n, v in row.items()}
            for other_pivot, other in self.rows.items():
                if pivot in other:
                    self.rows[other_pivot] = self._minus(other, other[pivot], row)
            self.rows[pivot] = row

    @staticmethod
    def _minus(row, factor, other):
        out = dict(row)
        for n, v in other.items():
            out[n] = out.get(n, 0) - factor * v
            if not out[n]:
                del out[n]
        return out

    def reduce(self, vector: dict) -> dict:
        for pivot, row in self.rows.items():
            if vector.get(pivot):
                vector = self._minus(vector, vector[pivot], row)
        return vector

    def knows_sum(self, nodes) -> bool:
        """Whether the sum of these unknown nodes follows from what is shown."""
        return not self.reduce({n: Fraction(1) for n in nodes})


def raw_figures(f, monkeypatch):
    """The same tables with nothing hidden (for the test to know the hidden counts)."""
    from youthhub.stats import suppression

    with monkeypatch.context() as m:
        m.setattr(selectors, "hide", lambda values, relations, always_hidden=(): (
            suppression.Knowledge(values, relations, set(always_hidden))))  # fmt: skip
        return selectors.figures(f)


def assert_nothing_small_can_be_worked_out(f, monkeypatch):
    tables = selectors.figures(f)
    raw = page_numbers(raw_figures(f, monkeypatch))
    numbers = page_numbers(tables)
    shown = {n: v for n, v in numbers.items() if v is not None}
    reader = Reader(page_equations(tables), shown)
    # No hidden count, and no sum of hidden counts of one table (up to three of them), that
    # can be worked out is between 1 and 4.
    for name, table in tables.items():
        if not table.has_total:
            continue  # the capacity averages: minutes, not people
        hidden = [f"{name}:{k}" for k, v in table.values.items() if v is None]
        for size in range(1, min(len(hidden), 3) + 1):
            for group in combinations(hidden, size):
                small = 0 < sum(raw[n] for n in group) < 5
                assert not (small and reader.knows_sum(group)), group
    # Derived figures only where the shown numbers decide them.
    for name, table in tables.items():
        if name.startswith("fb_") and table.derived["mean"] is not None:
            assert (
                table.total is not None
                and all(table.values.values())
                or not sum(raw[f"{name}:{k}"] for k, v in table.values.items() if v is None)
            )
    return tables


def closed_requests(make_youth, n, *, staff=None, target="any", scores=None, topic=None):
    """`n` requests through the real services: answered by `staff` and ended (with feedback
    `scores`), or left in the queue when there is no staff."""
    for _i in range(n):
        youth, _token = make_youth()
        conversation = queue.queue_request(youth=youth, target=target, topic=topic)
        if staff is None:
            conversation_end(actor=Actor.for_youth(youth), conversation_id=conversation.id)
            continue
        queue.queue_accept(user=staff, conversation_id=conversation.id)
        conversation_end(
            actor=Actor.for_staff(staff), conversation_id=conversation.id, feedback=True
        )
        if scores:
            feedback_give(youth=youth, conversation_id=conversation.id, scores=scores)


@pytest.fixture
def roomy(team):
    for user in team:
        user.staff_profile.capacity = 50
        user.staff_profile.save()
    return team


def test_leak_a_waiting_and_length_totals_do_not_give_the_one_who_left_away(
    roomy, make_youth, monkeypatch
):
    closed_requests(make_youth, 8, staff=roomy[0])
    closed_requests(make_youth, 1)  # left the queue
    tables = assert_nothing_small_can_be_worked_out(today_filters(), monkeypatch)
    assert tables["by_day"].total == 9
    assert set(tables["outcome"].values.values()) == {None}
    # Before: the waiting and length tables showed 8 answered, and 9 - 8 = 1 who left.
    for name in ("wait", "duration"):
        shown = sum(v for v in tables[name].values.values() if v is not None)
        assert tables[name].total is None and 9 - shown >= 5, name
    assert tables["wait"].derived == {"median": None, "p90": None}


def test_leak_b_handovers_sent_and_accepted_do_not_give_a_decline_away(
    team, arena, make_youth, monkeypatch
):
    send_handovers(team, make_youth, accepted=5, declined=1)
    tables = assert_nothing_small_can_be_worked_out(today_filters(), monkeypatch)
    assert tables["handover_sent"].values["bup"] == 6 and tables["handover_sent"].total == 6
    # Before: 6 sent, 5 accepted shown, declines hidden: 6 - 5 = 1.
    assert set(tables["handover_outcome"].values.values()) == {None}
    assert tables["handover_days"].total is None
    assert set(tables["handover_days"].values.values()) == {None}
    assert tables["handover_outcome"].derived == {"accepted_share": None, "declined_share": None}


def test_leak_c_the_roles_table_does_not_give_a_named_person_away(roomy, make_youth, monkeypatch):
    closed_requests(make_youth, 1, target={"staff": roomy[0].id})
    closed_requests(make_youth, 6, target={"role": "psychologist"})
    closed_requests(make_youth, 9)
    tables = assert_nothing_small_can_be_worked_out(today_filters(), monkeypatch)
    assert tables["requested"].values == {"person": None, "role": None, "any": 9}
    assert tables["requested"].total == 16
    # Before: the roles table showed its total 6, and 16 - 9 - 6 = 1 asked for a person.
    assert tables["role"].total is None
    assert set(tables["role"].values.values()) == {None}


def test_leak_d_a_feedback_mean_is_shown_only_when_the_cells_decide_it(
    roomy, make_youth, monkeypatch
):
    ingrid = roomy[0]
    closed_requests(make_youth, 7, staff=ingrid, scores={"useful": 5, "understood": 5})
    closed_requests(make_youth, 6, staff=ingrid, scores={"useful": 4, "understood": 5})
    closed_requests(make_youth, 2, staff=ingrid, scores={"useful": 1, "understood": 5})
    tables = assert_nothing_small_can_be_worked_out(today_filters(), monkeypatch)
    useful = tables["fb_useful"]
    assert useful.values == {"0": None, "1": None, "2": None, "3": None, "4": None, "5": 7}
    assert useful.total == 15
    # Before: mean 4.1 with the total 15 solved 4a + b = 26, a + b = 8: a = 6, b = 2.
    assert useful.derived == {"mean": None}
    # Every answer the same: the hidden cells can only be 0, so the mean adds nothing.
    understood = tables["fb_understood"]
    assert understood.values["5"] == 15 and understood.derived == {"mean": "5.0"}


def test_random_pages_give_no_small_number_away(db, monkeypatch):
    """Random small days of traffic, written through the roll-up writer: after suppression,
    exact linear algebra on the shown numbers finds no hidden count from 1 to 4."""
    import random
    from types import SimpleNamespace

    from youthhub.handover.models import ServiceKind
    from youthhub.stats import services as rollups

    rng = random.Random(6)
    start = timezone.localdate() - timedelta(days=9)
    f = Filters(start=start, end=start + timedelta(days=8))
    moment0 = datetime.combine(start, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    for _round in range(20):
        Count.objects.all().delete()
        cells = Counter()
        for _i in range(rng.randint(5, 40)):
            created = moment0 + timedelta(hours=rng.choice([10, 11, 14, 30, 34, 58, 80, 200]))
            state = rng.choice(["ended"] * 5 + ["abandoned", "no_show"])
            assigned = created + timedelta(minutes=rng.choice([0, 3, 12, 40]))
            conversation = SimpleNamespace(
                pool_id=1, site_id=rng.choice([0, 1]), channel=rng.choice(["chat", "dropin"]),
                created_at=created, state=state,
                requested_staff_id=rng.choice([None, None, 7]),
                requested_role=rng.choice(["", "psychologist", "health_nurse"]),
                topic=rng.choice(["", "school", "family"]), crisis=rng.random() < 0.1,
                after_hours=rng.random() < 0.2,
                assigned_at=None if state == "abandoned" else assigned,
                ended_at=assigned + timedelta(minutes=rng.choice([4, 9, 25, 70])),
                tags=rng.sample(["stress", "family"], rng.randint(0, 2)),
                triage=rng.choice(["", "green", "red"]),
            )  # fmt: skip
            cells.update(rollups.conversation_cells(conversation))
            if state == "ended" and rng.random() < 0.6:
                scores = SimpleNamespace(STATEMENTS=("useful",), useful=rng.choice([3, 4, 5]))
                cells.update(rollups.feedback_cells(scores, conversation))
            if rng.random() < 0.3:
                hour = rollups.hour_of(created)
                kind = rng.choice([ServiceKind.BUP, ServiceKind.NAV])
                cells[(hour, 1, 0, "chat", "handover_sent", kind)] += 1
                went = rng.choice(["accepted", "met", "declined", "open"])
                if went in ("accepted", "met"):
                    cells[(hour, 1, 0, "chat", "handover_accepted", kind)] += 1
                    cells[(hour, 1, 0, "chat", "handover_days", rng.choice(["<3", "<7"]))] += 1
                if went == "met":
                    cells[(hour, 1, 0, "chat", "handover_met", kind)] += 1
                if went == "declined":
                    cells[(hour, 1, 0, "chat", "handover_declined", kind)] += 1
        rollups._bump(cells)
        assert_nothing_small_can_be_worked_out(f, monkeypatch)
        assert_nothing_small_can_be_worked_out(
            Filters(start=f.start, end=f.end, channel="chat"), monkeypatch
        )


# -- the management commands ------------------------------------------------------------------


def test_rebuild_stats_guards_the_retention_window(roomy, make_youth, settings):
    from django.core.management import CommandError, call_command

    closed_requests(make_youth, 6, staff=roomy[0], scores={"useful": 4})
    closed_requests(make_youth, 2)
    cells = sorted(Count.objects.values_list("hour", "metric", "key", "value"))
    Count.objects.filter(metric="contacts").update(value=99)  # a cell gone wrong
    settings.YOUTHHUB_RETENTION_DAYS = 30
    too_early = (timezone.localdate() - timedelta(days=31)).isoformat()
    wrong = sorted(Count.objects.values_list("hour", "metric", "key", "value"))
    with pytest.raises(CommandError, match="retention window"):
        call_command("rebuild_stats", "--since", too_early, stdout=io.StringIO())
    assert sorted(Count.objects.values_list("hour", "metric", "key", "value")) == wrong
    with pytest.raises(CommandError):
        call_command("rebuild_stats", "--since", "last week", stdout=io.StringIO())
    # Inside the window (the default): the cells are recomputed from the stored rows.
    out = io.StringIO()
    call_command("rebuild_stats", stdout=out)
    assert "8 conversations, 6 feedback" in out.getvalue()
    assert sorted(Count.objects.values_list("hour", "metric", "key", "value")) == cells
    # --force allows an earlier day (here every conversation is still stored).
    Count.objects.filter(metric="contacts").update(value=99)
    out = io.StringIO()
    call_command("rebuild_stats", "--since", too_early, "--force", stdout=out)
    assert "8 conversations" in out.getvalue()
    assert sorted(Count.objects.values_list("hour", "metric", "key", "value")) == cells


def test_simulate_traffic_refuses_a_real_database_and_bad_options(db, settings, monkeypatch):
    from django.core.management import CommandError, call_command

    from tests.conftest import db_snapshot

    before = db_snapshot()
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "django.db.backends.postgresql")
    with pytest.raises(CommandError, match="--force"):
        call_command("simulate_traffic", "--weeks", "1", stdout=io.StringIO())
    for options, message in (
        (["--weeks", "0"], "--weeks"),
        (["--load", "0"], "--load"),
        (["--end", timezone.localdate().isoformat()], "before today"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("simulate_traffic", "--force", *options, stdout=io.StringIO())
    assert db_snapshot() == before


def test_simulate_traffic_fills_the_statistics(db):
    from django.core.management import call_command

    from youthhub.stats.models import CapacityHour

    end = timezone.localdate() - timedelta(days=1)
    out = io.StringIO()
    call_command(
        "simulate_traffic", "--weeks", "1", "--load", "0.1", "--seed", "5",
        "--end", end.isoformat(), "--force", stdout=out,
    )  # fmt: skip
    lines = dict(
        line.strip().split(": ", 1) for line in out.getvalue().splitlines() if ": " in line
    )
    assert int(lines["errors"]) == 0 and int(lines["contacts"]) > 0
    assert "contacts (" in out.getvalue()
    tables = selectors.figures(Filters(start=end - timedelta(days=6), end=end))
    closed = int(lines["contacts"]) - int(lines["still_open"])
    assert sum(Count.objects.filter(metric="contacts").values_list("value", flat=True)) == closed
    assert tables["by_day"].total in (closed, None)
    assert sum(CapacityHour.objects.values_list("minutes", flat=True)) == int(
        lines["capacity_samples"]
    )
