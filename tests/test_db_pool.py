"""Each worker borrows PostgreSQL connections from a pool of its own (youthhub/settings.py).
Under ASGI every HTTP request runs in a thread of its own: with persistent connections
(CONN_MAX_AGE) each such thread left one open, which a busy day turns into PostgreSQL's
`max_connections` reached."""

import urllib.request

import pytest
from django.db import connection

from tests.browser import server_name

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def open_connections(port: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [server_name(port)],
        )
        return cursor.fetchone()[0]


def test_many_requests_keep_to_the_pool(daphne_server, settings):
    url = daphne_server["url"]
    port = int(url.rsplit(":", 1)[1])
    for _ in range(40):  # each reads the database (the pool's people and roles)
        with urllib.request.urlopen(url + "/api/queue/overview", timeout=10) as response:
            assert response.status == 200
    pool = settings.DATABASES["default"]["OPTIONS"]["pool"]
    assert 1 <= open_connections(port) <= pool["max_size"]
