"""Operator metrics for Prometheus: what an on-call engineer needs, nothing about a youth.

Exposed at /metrics (youthhub/urls.py) only to a scraper that sends
`Authorization: Bearer $YOUTHHUB_METRICS_TOKEN`; without that setting the URL is a 404, and
deploy/nginx/youthhub.conf answers 404 for /metrics as well: the scraper talks to the
workers directly.

What is counted (names and labels are the contract; docs/operations.md lists them):
- `youthhub_websocket_connections{kind}`: open sockets by kind (youth, staff, partner).
- `youthhub_frames_total{kind, type}`: frames accepted by the protocol (registered types only,
  so the label set is bounded; anything else is counted as an error below).
- `youthhub_errors_total{kind, code}`: error frames sent, by protocol error code.
- `youthhub_message_delivery_seconds{to}`: from the moment a message was stored to the moment
  a socket of the *other* side sent it out (live delivery only; replays after a reconnect are
  not latency). Buckets from 1 ms to 5 s.
- `youthhub_queue_waiting{pool, site}`, `youthhub_queue_longest_wait_seconds{pool, site}`
  and `youthhub_staff_on_duty{pool}`: read from the database at scrape time, so every worker
  reports the same truth. `site` is empty for chat requests (they wait in the pool's queue)
  and names the arena for drop-in tickets.
- `youthhub_layer_recoveries_total{layer}` and `youthhub_layer_reconnected_sockets_total{layer}`:
  the channel layer (Redis) lost events and works again; the worker's sockets were told to
  reconnect and catch up (chat/layerwatch.py). `layer`: pubsub, core (or memory).

No label ever holds a conversation id, a token, an alias or any text; counts only.

Several Daphne workers: set PROMETHEUS_MULTIPROC_DIR (an empty directory, wiped before the
workers start) and every worker writes its counters there; a scrape of any one worker sums
all of them (prometheus_client's multiprocess mode). A worker that was killed leaves its
files behind; its open-connection gauge is dropped at the next scrape (`_forget_the_dead`),
its counters stay, as counters should.
"""

import hmac
import os
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or ""

CONNECTIONS = Gauge(
    "youthhub_websocket_connections",
    "Open WebSocket connections by kind.",
    ["kind"],
    multiprocess_mode="livesum",
)
FRAMES = Counter(
    "youthhub_frames", "Frames accepted, by socket kind and frame type.", ["kind", "type"]
)
ERRORS = Counter("youthhub_errors", "Error frames sent, by socket kind and code.", ["kind", "code"])
DELIVERY = Histogram(
    "youthhub_message_delivery_seconds",
    "Stored message to sent on a socket of the other side (live delivery).",
    ["to"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# Labelled (by the layer in use) so nothing is created before the first event: an unlabelled
# multiprocess counter opens its file at import, before the metrics directory exists.
LAYER_RECOVERIES = Counter(
    "youthhub_layer_recoveries",
    "Times a worker's channel layer came back after trouble (its sockets reconnect).",
    ["layer"],
)
LAYER_RECONNECTS = Counter(
    "youthhub_layer_reconnected_sockets",
    "Sockets closed with 4012 (reconnect and catch up) after channel-layer trouble.",
    ["layer"],
)


def socket_opened(kind: str) -> None:
    CONNECTIONS.labels(kind).inc()


def socket_closed(kind: str) -> None:
    CONNECTIONS.labels(kind).dec()


def frame_accepted(kind: str, frame_type: str) -> None:
    FRAMES.labels(kind, frame_type).inc()


def error_sent(kind: str, code: str) -> None:
    ERRORS.labels(kind, code).inc()


def layer_recovered(sockets: int) -> None:
    layer = settings.CHANNEL_LAYER_KIND if settings.REDIS_URL else "memory"
    LAYER_RECOVERIES.labels(layer).inc()
    LAYER_RECONNECTS.labels(layer).inc(sockets)


def message_delivered(to: str, sent_at: str) -> None:
    """`sent_at` is the message frame's ISO timestamp (when it was stored)."""
    seconds = timezone.now().timestamp() - datetime.fromisoformat(sent_at).timestamp()
    DELIVERY.labels(to).observe(max(seconds, 0.0))


class QueueCollector:
    """Queue and duty figures, read from the database when Prometheus scrapes."""

    def collect(self):
        from chat.models import Conversation
        from dropin import selectors as queue
        from dropin.models import Pool, Site

        now = timezone.now()
        pools = dict(Pool.objects.values_list("pk", "slug"))
        sites = {
            pk: (slug, pool_id)
            for pk, slug, pool_id in Site.objects.values_list("pk", "slug", "pool_id")
        }
        waiting = GaugeMetricFamily(
            "youthhub_queue_waiting", "Requests and tickets waiting.", labels=["pool", "site"]
        )
        longest = GaugeMetricFamily(
            "youthhub_queue_longest_wait_seconds",
            "How long the oldest waiting request or ticket has waited.",
            labels=["pool", "site"],
        )
        rows = (
            Conversation.objects.filter(state=Conversation.State.QUEUED)
            .values("pool_id", "site_id")
            .annotate(n=Count("id"), oldest=Min("created_at"))
        )
        for row in rows:
            site, site_pool = sites.get(row["site_id"], ("", None))
            pool = pools.get(row["pool_id"] or site_pool, "")
            waiting.add_metric([pool, site], row["n"])
            longest.add_metric([pool, site], max((now - row["oldest"]).total_seconds(), 0.0))
        on_duty = GaugeMetricFamily(
            "youthhub_staff_on_duty", "Staff on duty who serve the pool.", labels=["pool"]
        )
        staff = queue.on_duty(now)
        for pk, slug in pools.items():
            on_duty.add_metric([slug], sum(1 for s in staff if pk in s.pool_ids))
        return [waiting, longest, on_duty]


def _forget_the_dead() -> None:
    """Drop the live gauges of workers that died without saying so (kill -9)."""
    for name in os.listdir(MULTIPROCESS_DIR):
        if not name.startswith("gauge_live"):
            continue
        try:
            pid = int(name.rsplit("_", 1)[1].split(".")[0])
        except ValueError:
            continue  # not a file prometheus_client wrote
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, MULTIPROCESS_DIR)
        except PermissionError:
            pass  # alive, someone else's


def registry() -> CollectorRegistry:
    scraped = CollectorRegistry()
    if MULTIPROCESS_DIR:
        _forget_the_dead()
        multiprocess.MultiProcessCollector(scraped, MULTIPROCESS_DIR)
    else:
        for collector in (CONNECTIONS, FRAMES, ERRORS, DELIVERY):
            scraped.register(collector)
        ProcessCollector(registry=scraped)  # this worker's CPU and memory
    scraped.register(QueueCollector())
    return scraped


@require_GET
def metrics_view(request):
    token = settings.YOUTHHUB_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Http404  # the endpoint does not exist for anyone else
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
