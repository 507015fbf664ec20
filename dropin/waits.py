"""The waiting-time estimate: pure arithmetic, shared by the live queue and the simulation.

Model (documented with its measured error in docs/wait-estimate.md): the staff who can take this
request have `slots` chat places in total (sum of their capacity), `busy` of them in use.
If fewer requests are ahead of this one than there are free places, someone can answer
at once (`answer_seconds`, the usual time from a free place to an accept). Otherwise the
request waits for `ahead - free + 1` places to free up; with every place finishing a chat
every `handle_seconds` on average, places free up at `slots / handle_seconds`.

Shown to youth as a range in plain words ("about 5–10 min"), never as a promise.
"""

from dataclasses import dataclass

ANSWER_SECONDS = 60  # a free staff member notices and accepts within about a minute
RANGE_LOW, RANGE_HIGH = 0.6, 1.5  # the range shown around the point estimate


@dataclass(frozen=True)
class Estimate:
    seconds: int
    low: int
    high: int

    def as_dict(self) -> dict:
        return {"eta_seconds": self.seconds, "eta_range": [self.low, self.high]}


def estimate_wait(
    *,
    ahead: int,
    slots: int,
    busy: int,
    handle_seconds: float,
    answer_seconds: float = ANSWER_SECONDS,
) -> Estimate | None:
    """Expected wait for a request with `ahead` requests before it, or None if nobody is on."""
    if slots <= 0:
        return None
    free = max(slots - busy, 0)
    if ahead < free:
        seconds = answer_seconds
    else:
        seconds = answer_seconds + (ahead - free + 1) * handle_seconds / slots
    return Estimate(
        seconds=round(seconds),
        low=round(seconds * RANGE_LOW),
        high=round(seconds * RANGE_HIGH),
    )


def mean_handle_seconds(durations: list[float], *, default: float) -> float:
    """Mean of recent chat durations (assigned -> ended), trimmed of the longest 10 %."""
    if len(durations) < 5:
        return default
    kept = sorted(durations)[: max(1, int(len(durations) * 0.9))]
    return sum(kept) / len(kept)
