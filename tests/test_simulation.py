"""The queue simulation that measures the waiting-time estimate (dropin/simulation.py)."""

from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from dropin.simulation import (
    ACCEPT_LATENCY,
    ARRIVALS_PER_HOUR,
    CAPACITY,
    SHIFTS,
    simulate_day,
    simulate_days,
)
from dropin.waits import estimate_wait

DAYS = 20


@pytest.fixture(scope="module")
def days():
    return simulate_days(DAYS, seed=1)


def test_same_seed_same_day_other_seed_other_day():
    assert simulate_day(7) == simulate_day(7)
    assert simulate_day(7).requests != simulate_day(8).requests
    assert simulate_days(3, seed=5) == simulate_days(3, seed=5)


def test_every_request_is_answered_or_abandoned_and_waits_are_sane(days):
    low, _ = ACCEPT_LATENCY
    for day in days.days:
        for r in day.requests:
            assert r.abandoned == (r.wait is None)
            if r.wait is not None:
                assert r.wait >= 0
                assert r.wait >= low  # nobody is accepted faster than a staff member reacts
        a = day.accuracy
        assert a.n_answered + a.n_abandoned == a.n_requests
        assert 80 <= a.n_requests <= 200


def test_without_patience_limit_nobody_abandons():
    day = simulate_day(3, patience_median=None)
    assert day.accuracy.n_abandoned == 0
    assert all(r.wait is not None for r in day.requests)


def test_arrival_curve_peaks_after_school(days):
    per_hour = Counter(r.hour for day in days.days for r in day.requests)
    assert max(ARRIVALS_PER_HOUR, key=ARRIVALS_PER_HOUR.get) in (14, 15)
    assert max(per_hour, key=per_hour.get) in (14, 15)
    assert per_hour[12] < per_hour[14] and per_hour[12] < per_hour[15]
    assert set(per_hour) == set(ARRIVALS_PER_HOUR)  # nobody arrives while closed


def test_estimate_uses_the_live_inputs(days):
    """What each youth was shown is estimate_wait of the queue as it stood at arrival, with
    the places of the staff whose shift covered that moment."""
    for r in days.days[0].requests:
        on_shift = sum(1 for start, end in SHIFTS if start <= r.hour < end)
        assert r.slots == on_shift * CAPACITY
        assert 0 <= r.busy <= r.slots
        expected = estimate_wait(
            ahead=r.ahead, slots=r.slots, busy=r.busy, handle_seconds=r.handle_seconds
        )
        assert (r.estimate, r.low, r.high) == (expected.seconds, expected.low, expected.high)
    assert any(r.ahead > 0 for day in days.days for r in day.requests)  # queues do form


def test_busier_day_means_longer_waits(days):
    busy = simulate_days(5, seed=1, load=1.3).accuracy
    calm = simulate_days(5, seed=1, load=0.6).accuracy
    assert calm.mean_wait_seconds < days.accuracy.mean_wait_seconds < busy.mean_wait_seconds
    assert busy.n_abandoned / busy.n_requests > calm.n_abandoned / calm.n_requests


def test_estimator_beats_naive_baselines(days):
    a = days.accuracy
    assert a.mae_seconds < a.mae_zero_seconds
    assert a.mae_seconds < a.mae_position_seconds
    assert a.mae_seconds < a.mae_constant_seconds
    assert a.median_abs_error_seconds <= a.mae_seconds
    assert 0.5 < a.share_in_range <= 1
    assert a.share_in_range + a.share_too_short + a.share_too_long == pytest.approx(1)


def test_command_prints_the_figures():
    out = StringIO()
    call_command("simulate_waits", "--days", "2", "--seed", "3", stdout=out)
    text = out.getvalue()
    assert "MAE" in text
    assert "seeds 3-4" in text
    assert "inside shown range" in text
