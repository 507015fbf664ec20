"""Shared fixtures. Roles used throughout:

- ingrid: staff (psychologist), the one who usually takes the youth
- sara:   staff (public-health nurse), Ingrid's colleague; should not see Ingrid's chats
- a youth: anonymous, created through the real service (token + alias)
"""

import time

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.cache import cache
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client, TransactionTestCase

from chat import services
from tests.browser import browser, daphne_server, two_factor_server  # noqa: F401  (fixtures for test_browser*)
from youthhub.asgi import application
from youthhub.staff.services import staff_create_or_update

PASSWORD = "correct-horse-battery-42"
ORIGIN = (b"origin", b"http://localhost")


def _flush_retrying_deadlocks(flush):
    """A transactional test's teardown truncates every table while the browser tests' server
    (its queue timer, a closing socket) may read two of them in one transaction: PostgreSQL
    then breaks the deadlock by failing the TRUNCATE, and the next test would start on the
    last one's rows. The flush is one transaction, so trying it again is safe."""

    def teardown(self):
        for attempt in range(5):
            try:
                return flush(self)
            except CommandError as exc:
                if "deadlock detected" not in str(exc.__cause__) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    return teardown


TransactionTestCase._fixture_teardown = _flush_retrying_deadlocks(
    TransactionTestCase._fixture_teardown
)


def pytest_collection_modifyitems(config, items):
    if settings.TEST_BACKEND == "services" and not settings.SERVICES_AVAILABLE:
        skip = pytest.mark.skip(reason="PostgreSQL/Redis not available (see tests/services.py)")
        for item in items:
            if "services" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    # Fixed-window limits: pin the clock mid-window so no test straddles a window boundary.
    monkeypatch.setattr("youthhub.ratelimit.clock", lambda: 1_800_000_030.0)
    cache.clear()  # rate-limit counters must not leak from one test to the next
    yield


@pytest.fixture
def make_staff(db):
    def make(username="ingrid", role="psychologist", display_name=None, **kwargs):
        profile = staff_create_or_update(
            username=username,
            password=PASSWORD,
            role=role,
            display_name=display_name or username.capitalize(),
            **kwargs,
        )
        return profile.user

    return make


@pytest.fixture
def ingrid(make_staff):
    return make_staff("ingrid", "psychologist")


@pytest.fixture
def sara(make_staff):
    return make_staff("sara", "health_nurse")


@pytest.fixture
def make_youth(db):
    def make():
        youth, token = services.youth_session_create()
        return youth, token

    return make


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def connect(path: str, cookie: bytes | None = None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def youth_socket(token: str, **hello) -> tuple[WebsocketCommunicator, dict]:
    ws = await connect("/ws/youth/")
    await ws.send_json_to({"type": "hello", "token": token, **hello})
    welcome = await ws.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def staff_socket(cookie: bytes, **hello) -> tuple[WebsocketCommunicator, dict]:
    ws = await connect("/ws/staff/", cookie)
    await ws.send_json_to({"type": "hello", **hello})
    welcome = await ws.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def receive_until(ws: WebsocketCommunicator, frame_type: str, timeout: float = 5) -> dict:
    """Next frame of `frame_type`, skipping others (queue updates, typing ...)."""
    while True:
        frame = await ws.receive_json_from(timeout=timeout)
        if frame["type"] == frame_type:
            return frame


async def drain(ws: WebsocketCommunicator, quiet: float = 0.3) -> list[dict]:
    """Every frame that arrives until the socket is quiet for `quiet` seconds."""
    frames = []
    while not await ws.receive_nothing(timeout=quiet):
        frames.append(await ws.receive_json_from())
    return frames


@pytest_asyncio.fixture
async def async_cleanup():
    """After an async test: flush the channel layer and close the database connection that
    database_sync_to_async's worker thread opened (else the test database cannot be dropped)."""
    yield
    await database_sync_to_async(connections.close_all)()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        try:
            await layer.flush()
        except NotImplementedError:
            pass


@pytest.fixture
def arena(db):
    """A regional pool with one arena open Mon–Fri 12–16 (Tue/Thu to 18), as seed_demo has."""
    from datetime import time

    from dropin.services import pool_ensure, site_ensure

    pool = pool_ensure(slug="vestfold", name="Vestfold chat")
    hours = {day: (time(12), time(16)) for day in range(5)}
    hours[1] = hours[3] = (time(12), time(18))
    return site_ensure(
        slug="tonsberg", name="Ung Arena Tønsberg", weekly_hours=hours, pool=pool, ticket_prefix="B"
    )


def put_on_duty(user, *sites, status="available"):
    """Make a staff member serve `sites` and be on now (as an open dashboard keeps them)."""
    from django.utils import timezone

    profile = user.staff_profile
    profile.sites.add(*sites)
    profile.status = status
    profile.seen_at = timezone.now()
    profile.save()
    return user


@pytest.fixture
def team(arena, make_staff):
    """Ingrid (psychologist) and Sara (nurse, who likes music and sport) on duty at the arena."""
    ingrid = put_on_duty(make_staff("ingrid", "psychologist"), arena)
    sara = put_on_duty(make_staff("sara", "health_nurse"), arena)
    sara.staff_profile.bio = "Helsesykepleier. Spør om alt."
    sara.staff_profile.interests = ["music", "sport"]
    sara.staff_profile.save()
    return ingrid, sara


# "Nothing was written" is equality of db_snapshot() before and after (tests/test_authz_matrix.py,
# tests/test_fuzz.py). Left out: the sessions table and fields that change by merely being
# there (presence, last seen), and the capacity figures the queue ticker writes once a minute
# whatever a frame does (a refused frame that straddles a minute would look like a write).
VOLATILE_FIELDS = {"seen_at", "last_seen_at"}
CLOCK_DRIVEN = {"stats.CapacitySample", "stats.CapacityHour"}


def db_snapshot() -> dict[str, list[str]]:
    """Every row of every table but sessions, less VOLATILE_FIELDS and CLOCK_DRIVEN."""
    from django.apps import apps

    snapshot = {}
    for model in apps.get_models():
        if model._meta.app_label == "sessions" or model._meta.label in CLOCK_DRIVEN:
            continue
        snapshot[model._meta.label] = sorted(
            repr(sorted((k, v) for k, v in row.items() if k not in VOLATILE_FIELDS))
            for row in model.objects.values()
        )
    return snapshot


@pytest.fixture
def simulated(db):
    """Three days of traffic through the real services (ORM work before Chromium starts),
    with the demo staff (supervisor mona, DEMO_PASSWORD)."""
    from datetime import timedelta

    from django.utils import timezone

    from youthhub.stats.simulate import simulate

    end = timezone.localdate() - timedelta(days=1)
    start = end - timedelta(days=2)
    summary = simulate(start=start, days=3, seed=2, load=0.6)
    assert summary.errors == 0 and summary.contacts > 50
    return start, end, summary
