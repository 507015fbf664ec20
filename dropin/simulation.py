"""How good is the waiting-time estimate? A seeded simulation of one day of the chat queue.

Pure Python, no database: a discrete-event simulation of one regional chat pool on a
Tuesday-like day (open 12-18). Youth arrive by a non-homogeneous Poisson process (hourly
rates, after-school peak), wait in the one queue (crisis first, then waiting time), and are
answered by the staff on shift, each with `capacity` chat places. At every arrival the
estimate is computed exactly as the live queue does (`QueueState.estimate`):

    estimate_wait(ahead=<queued requests before this one>,
                  slots=<sum of capacity of staff on duty>,
                  busy=<places in active chats>,
                  handle_seconds=mean_handle_seconds(<last 50 finished chats>, default=20 min))

and stored next to the wait that followed (arrival -> accept). `simulate_day` runs one day,
`simulate_days` several seeds and pools the requests. Results and set-up: docs/wait-estimate.md.

Modelling choices (each one a parameter of `simulate_day`):
- arrivals: piecewise-constant hourly rates (`ARRIVALS_PER_HOUR`), so within an hour the
  gaps are exponential; requests arrive only while open.
- staff: one shift per person (`SHIFTS`); when a shift ends the person goes "away" (out of
  `on_duty`, so out of `slots` and `busy`), finishes the chats they have and takes no more.
  Staff whose shift ends at closing stay until nobody is left waiting.
- answering: first come, first served (crisis first). When a place is free and someone waits,
  the least busy staff member reserves the place and accepts after 30-90 s (uniform); the
  youth counts as queued until the accept, as in the live queue.
- chat length: lognormal (mean 22 min, sigma 0.6), assigned -> ended.
- abandonment: each youth has a patience (lognormal, median 8 min, sigma 0.8): a youth
  nobody has started to pick up when it runs out leaves. 1 in 200 would give up within a
  minute, 1 in 10 within 3 minutes, half within 8. Abandoned requests are counted
  separately and left out of the error figures (their wait is unknown).
- `load` scales every hourly rate (1.3: a busy day, for the same staff).
- `prior_chats`: the live system averages the last 50 chats of the last 14 days, so a day
  starts with earlier days' chats in the window; these are drawn from the same distribution.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .waits import Estimate, estimate_wait, mean_handle_seconds

HOUR = 3600
OPEN_HOUR = 12  # Ung Arena opens at 12; the last hourly rate sets closing (18 on Tue/Thu)

# Expected requests per hour, by starting hour: quiet at noon (school), after-school peak
# 14-16, an evening bump on long days. Sums to 138 a day.
ARRIVALS_PER_HOUR: dict[int, float] = {12: 8, 13: 12, 14: 32, 15: 38, 16: 28, 17: 20}

# One (start hour, end hour) per staff member: 3 on 12-14, 5 on 14-16, 4 on 16-18.
SHIFTS: tuple[tuple[int, int], ...] = ((12, 16), (12, 18), (12, 18), (14, 18), (14, 18))

CAPACITY = 3  # chat places per staff member (StaffProfile.capacity default)
DURATION_MEAN = 22 * 60  # seconds, assigned -> ended
DURATION_SIGMA = 0.6  # lognormal shape: median about 18 min, 1 in 10 longer than 40 min
ACCEPT_LATENCY = (30, 90)  # seconds from a free place to an accept
PATIENCE_MEDIAN = 8 * 60  # seconds
PATIENCE_SIGMA = 0.8
CRISIS_SHARE = 0.03
HISTORY = 50  # finished chats the live system averages (selectors.recent_handle_seconds)
DEFAULT_HANDLE = 20 * 60  # settings.YOUTHHUB_DEFAULT_HANDLE_MINUTES
NAIVE_MINUTES_PER_POSITION = 10
NAIVE_CONSTANT = 60  # "about a minute", whatever the queue


@dataclass(frozen=True)
class Request:
    """One youth's request: what they were shown at arrival and what happened."""

    arrived: float  # seconds since opening
    crisis: bool
    ahead: int
    slots: int
    busy: int
    handle_seconds: float
    estimate: int | None  # None: nobody on duty
    low: int | None
    high: int | None
    wait: float | None  # arrival -> accept; None if abandoned
    abandoned: bool

    @property
    def hour(self) -> int:
        return OPEN_HOUR + int(self.arrived // HOUR)

    @property
    def position(self) -> int:
        return self.ahead + 1

    @property
    def immediate(self) -> bool:
        """Whether the estimate said "a free place now" (ahead < free places)."""
        return self.ahead < max(self.slots - self.busy, 0)

    @property
    def error(self) -> float | None:
        """Estimate minus actual wait (positive: the estimate was too long)."""
        if self.wait is None or self.estimate is None:
            return None
        return self.estimate - self.wait


@dataclass(frozen=True)
class Accuracy:
    """Error figures over a set of requests (answered requests with an estimate only)."""

    n_requests: int
    n_answered: int
    n_abandoned: int
    mae_seconds: float
    median_abs_error_seconds: float
    bias_seconds: float  # mean (estimate - actual): > 0 means too pessimistic
    share_in_range: float  # share of actual waits inside the shown [low, high]
    share_too_short: float  # actual wait above the range
    share_too_long: float  # actual wait below the range
    mean_wait_seconds: float
    p90_wait_seconds: float
    mae_zero_seconds: float  # baseline: always say 0
    mae_constant_seconds: float  # baseline: always say 1 minute
    mae_position_seconds: float  # baseline: position x 10 minutes

    @classmethod
    def of(cls, requests: Iterable[Request]) -> Accuracy:
        requests = list(requests)
        counts = (
            len(requests),
            sum(1 for r in requests if r.wait is not None),
            sum(1 for r in requests if r.abandoned),
        )
        scored = [r for r in requests if r.error is not None]
        if not scored:
            return cls(*counts, *[math.nan] * 11)
        waits = [r.wait for r in scored]
        errors = [r.error for r in scored]
        n = len(scored)
        position = NAIVE_MINUTES_PER_POSITION * 60
        return cls(
            *counts,
            mae_seconds=sum(abs(e) for e in errors) / n,
            median_abs_error_seconds=statistics.median(abs(e) for e in errors),
            bias_seconds=sum(errors) / n,
            share_in_range=sum(1 for r in scored if r.low <= r.wait <= r.high) / n,
            share_too_short=sum(1 for r in scored if r.wait > r.high) / n,
            share_too_long=sum(1 for r in scored if r.wait < r.low) / n,
            mean_wait_seconds=sum(waits) / n,
            p90_wait_seconds=_quantile(waits, 0.9),
            mae_zero_seconds=sum(waits) / n,
            mae_constant_seconds=sum(abs(NAIVE_CONSTANT - w) for w in waits) / n,
            mae_position_seconds=sum(abs(r.position * position - r.wait) for r in scored) / n,
        )


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class DayResult:
    seed: int
    requests: tuple[Request, ...]
    accuracy: Accuracy


@dataclass(frozen=True)
class MultiDayResult:
    seeds: tuple[int, ...]
    days: tuple[DayResult, ...]
    accuracy: Accuracy  # over all days' requests pooled
    daily_mae_seconds: tuple[float, ...]
    breakdown: dict[str, Accuracy]  # by what the estimate said, and by hour of arrival


# -- the simulation --------------------------------------------------------------------------


@dataclass
class _Staff:
    start: float
    end: float
    capacity: int
    on_duty: bool = False
    active: int = 0  # chats in progress
    reserved: int = 0  # places held for an accept under way
    stays_to_close: bool = False

    @property
    def free(self) -> int:
        return max(self.capacity - self.active - self.reserved, 0)


@dataclass
class _Youth:
    index: int
    arrived: float
    crisis: bool
    patience: float
    duration: float
    matched: bool = False  # a staff member has started to pick this youth up
    estimate: Estimate | None = None
    shown: tuple[int, int, int, float] = (0, 0, 0, 0.0)  # ahead, slots, busy, handle
    wait: float | None = None
    abandoned: bool = False

    @property
    def key(self):
        return (not self.crisis, self.arrived, self.index)


def arrival_times(rng: random.Random, rates: dict[int, float]) -> list[float]:
    """Non-homogeneous Poisson arrivals, piecewise constant by hour; seconds since opening."""
    times = []
    for hour in sorted(rates):
        rate = rates[hour] / HOUR
        if rate <= 0:
            continue
        start = (hour - OPEN_HOUR) * HOUR
        t = start + rng.expovariate(rate)
        while t < start + HOUR:
            times.append(t)
            t += rng.expovariate(rate)
    return times


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def simulate_day(
    seed: int = 1,
    *,
    arrivals_per_hour: dict[int, float] | None = None,
    shifts: Sequence[tuple[int, int]] = SHIFTS,
    capacity: int = CAPACITY,
    duration_mean: float = DURATION_MEAN,
    duration_sigma: float = DURATION_SIGMA,
    accept_latency: tuple[float, float] = ACCEPT_LATENCY,
    patience_median: float | None = PATIENCE_MEDIAN,
    patience_sigma: float = PATIENCE_SIGMA,
    load: float = 1.0,
    crisis_share: float = CRISIS_SHARE,
    prior_chats: int = HISTORY,
    default_handle: float = DEFAULT_HANDLE,
) -> DayResult:
    """One day of the queue; the same seed and parameters give the same result."""

    # One stream per source of chance, so that changing one parameter (say, no abandonment)
    # leaves the other draws alone and variants can be compared request by request.
    def stream(name: str) -> random.Random:
        return random.Random(f"{seed}:{name}")

    durations, crises, patiences, latencies = (
        stream(n) for n in ("duration", "crisis", "patience", "latency")
    )
    rates = ARRIVALS_PER_HOUR if arrivals_per_hour is None else arrivals_per_hour
    rates = {hour: rate * load for hour, rate in rates.items()}
    close = (max(rates) + 1 - OPEN_HOUR) * HOUR if rates else 0

    history = stream("history")
    finished = [_lognormal(history, duration_mean, duration_sigma) for _ in range(prior_chats)]
    youth = []
    for i, t in enumerate(arrival_times(stream("arrivals"), rates)):
        youth.append(
            _Youth(
                index=i,
                arrived=t,
                crisis=crises.random() < crisis_share,
                patience=(
                    patiences.lognormvariate(math.log(patience_median), patience_sigma)
                    if patience_median
                    else math.inf
                ),
                duration=_lognormal(durations, duration_mean, duration_sigma),
            )
        )
    staff = [
        _Staff(
            start=(a - OPEN_HOUR) * HOUR,
            end=(b - OPEN_HOUR) * HOUR,
            capacity=capacity,
            stays_to_close=(b - OPEN_HOUR) * HOUR >= close,
        )
        for a, b in shifts
    ]

    events: list[tuple[float, int, int, str, object]] = []
    counter = 0

    def schedule(t: float, priority: int, kind: str, what: object) -> None:
        # priority orders events at the same instant: shift ends, shift starts, accepts and
        # chat ends (freeing places), arrivals, abandonments
        nonlocal counter
        counter += 1
        heapq.heappush(events, (t, priority, counter, kind, what))

    for s in staff:
        schedule(s.start, 1, "start", s)
        if not s.stays_to_close:
            schedule(s.end, 0, "end", s)
    for y in youth:
        schedule(y.arrived, 3, "arrive", y)

    queue: list[_Youth] = []  # queued (not yet accepted), in queue order

    def dispatch(now: float) -> None:
        for y in queue:
            if y.matched:
                continue
            candidates = [s for s in staff if s.on_duty and s.free > 0]
            if not candidates:
                return
            s = max(candidates, key=lambda s: s.free)  # first of the least busy
            s.reserved += 1
            y.matched = True
            schedule(now + latencies.uniform(*accept_latency), 2, "accept", (y, s))

    while events:
        now, _, _, kind, what = heapq.heappop(events)
        if kind == "start":
            what.on_duty = True
            dispatch(now)
        elif kind == "end":
            what.on_duty = False
        elif kind == "arrive":
            y = what
            on = [s for s in staff if s.on_duty]
            ahead = sum(1 for q in queue if q.key < y.key)
            slots = sum(s.capacity for s in on)
            busy = sum(s.active for s in on)
            handle = mean_handle_seconds(finished[-HISTORY:], default=default_handle)
            y.estimate = estimate_wait(ahead=ahead, slots=slots, busy=busy, handle_seconds=handle)
            y.shown = (ahead, slots, busy, handle)
            queue.append(y)
            queue.sort(key=lambda q: q.key)
            schedule(now + y.patience, 4, "abandon", y)
            dispatch(now)
        elif kind == "abandon":
            y = what
            if not y.matched and y.wait is None:
                y.abandoned = True
                queue.remove(y)
        elif kind == "accept":
            y, s = what
            s.reserved -= 1
            s.active += 1
            y.wait = now - y.arrived
            queue.remove(y)
            schedule(now + y.duration, 2, "finish", (y, s))
        elif kind == "finish":
            y, s = what
            s.active -= 1
            finished.append(y.duration)
            dispatch(now)

    requests = tuple(_record(y) for y in youth)
    return DayResult(seed=seed, requests=requests, accuracy=Accuracy.of(requests))


def _record(y: _Youth) -> Request:
    ahead, slots, busy, handle = y.shown
    e = y.estimate
    return Request(
        arrived=y.arrived,
        crisis=y.crisis,
        ahead=ahead,
        slots=slots,
        busy=busy,
        handle_seconds=handle,
        estimate=e.seconds if e else None,
        low=e.low if e else None,
        high=e.high if e else None,
        wait=y.wait,
        abandoned=y.abandoned,
    )


def simulate_days(days: int = 20, seed: int = 1, **params) -> MultiDayResult:
    """`days` days with seeds seed, seed+1, ...; figures over all requests pooled."""
    seeds = tuple(range(seed, seed + days))
    results = tuple(simulate_day(s, **params) for s in seeds)
    pooled = [r for day in results for r in day.requests]
    breakdown = {
        "free place shown": Accuracy.of(r for r in pooled if r.immediate),
        "queue shown": Accuracy.of(r for r in pooled if not r.immediate),
    }
    for hour in sorted({r.hour for r in pooled}):
        breakdown[f"{hour:02d}-{hour + 1:02d}"] = Accuracy.of(r for r in pooled if r.hour == hour)
    return MultiDayResult(
        seeds=seeds,
        days=results,
        accuracy=Accuracy.of(pooled),
        daily_mae_seconds=tuple(d.accuracy.mae_seconds for d in results),
        breakdown=breakdown,
    )
