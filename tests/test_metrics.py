"""Operator metrics (/metrics, youthhub/metrics.py): hidden without the token, and the
figures move with what really happens on the sockets and in the queue."""

import os
import subprocess
import sys
import textwrap

import pytest
from channels.db import database_sync_to_async
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from dropin.models import Pool, Site
from tests.conftest import receive_until, youth_socket
from tests.test_chat_ws import close, start_chat

TOKEN = "scrape-me-7f3a"


def scrape() -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    with override_settings(YOUTHHUB_METRICS_TOKEN=TOKEN):
        response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "configured, header",
    [
        ("", ""),
        ("", "Bearer "),
        (TOKEN, ""),
        (TOKEN, "Bearer wrong"),
        (TOKEN, TOKEN),  # the scheme is part of it
        (TOKEN, f"Bearer {TOKEN}x"),
    ],
)
def test_without_the_token_metrics_do_not_exist(configured, header):
    with override_settings(YOUTHHUB_METRICS_TOKEN=configured):
        response = Client().get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 404
    assert b"youthhub_" not in response.content


@pytest.mark.django_db
def test_metrics_are_read_only():
    with override_settings(YOUTHHUB_METRICS_TOKEN=TOKEN):
        response = Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_cleanup")
async def test_figures_follow_a_conversation(make_youth, make_staff):
    def region():
        pool = Pool.objects.create(name="Vestfold", slug="vestfold")
        site = Site.objects.create(name="Tønsberg", slug="tonsberg", pool=pool)
        return make_staff("ingrid", "psychologist", sites=[site])

    ingrid = await database_sync_to_async(region)()
    read = database_sync_to_async(scrape)
    before = await read()
    youth, staff, cid, _ = await start_chat(make_youth, ingrid)
    await staff.send_json_to({"type": "status", "status": "available"})
    await receive_until(staff, "status")
    # A second youth waits in the queue.
    _, token = await database_sync_to_async(make_youth)()
    waiting, _ = await youth_socket(token)
    await waiting.send_json_to({"type": "request", "target": "any"})
    await receive_until(waiting, "queued")

    await youth.send_json_to({"type": "message", "client_id": "y1", "text": "hei"})
    assert (await receive_until(youth, "message"))["seq"] == 1  # its own echo
    await receive_until(staff, "message")
    await staff.send_json_to(
        {"type": "message", "conversation_id": cid, "client_id": "s1", "text": "Hei!"}
    )
    assert (await receive_until(youth, "message"))["seq"] == 2
    await youth.send_to(text_data="{not json")
    await receive_until(youth, "error")

    during = await read()
    assert (
        value(during, "youthhub_websocket_connections", kind="youth")
        - value(before, "youthhub_websocket_connections", kind="youth")
        == 2
    )
    assert (
        value(during, "youthhub_websocket_connections", kind="staff")
        - value(before, "youthhub_websocket_connections", kind="staff")
        == 1
    )
    for kind, sent in (("youth", "message"), ("staff", "message"), ("staff", "accept")):
        grew = value(during, "youthhub_frames_total", kind=kind, type=sent) - value(
            before, "youthhub_frames_total", kind=kind, type=sent
        )
        assert grew == 1, (kind, sent)
    assert (
        value(during, "youthhub_errors_total", kind="youth", code="bad_json")
        - value(before, "youthhub_errors_total", kind="youth", code="bad_json")
        == 1
    )
    # One delivery to each side (a sender's own echo is not a delivery).
    for to in ("staff", "youth"):
        count = "youthhub_message_delivery_seconds_count"
        assert value(during, count, to=to) - value(before, count, to=to) == 1, to
        within_5s = "youthhub_message_delivery_seconds_bucket"
        assert (
            value(during, within_5s, to=to, le="5.0") - value(before, within_5s, to=to, le="5.0")
            == 1
        )
    # Read from the database: the pool has the one waiting request, and Ingrid on duty.
    assert value(during, "youthhub_queue_waiting", pool="vestfold", site="") == 1
    assert value(during, "youthhub_queue_longest_wait_seconds", pool="vestfold", site="") >= 0
    assert value(during, "youthhub_staff_on_duty", pool="vestfold") == 1

    await close(youth, staff, waiting)
    after = await read()
    for kind in ("youth", "staff"):
        assert value(after, "youthhub_websocket_connections", kind=kind) == value(
            before, "youthhub_websocket_connections", kind=kind
        )


def test_several_workers_add_up_and_a_killed_one_drops_out(tmp_path):
    """Multiprocess mode: two worker processes count connections into one directory; one
    dies by SIGKILL; a scrape from a third process counts only the live one, and keeps
    the dead one's counters."""
    worker = textwrap.dedent(
        """
        import os, signal, sys, time
        from youthhub import metrics
        metrics.socket_opened("youth")
        metrics.error_sent("youth", "bad_frame")
        print("ready", flush=True)
        if sys.argv[1] == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    live = subprocess.Popen(
        [sys.executable, "-c", worker, "live"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert live.stdout.readline().strip() == "ready"
        dead = subprocess.run(
            [sys.executable, "-c", worker, "die"], env=env, capture_output=True, timeout=60
        )
        assert dead.returncode == -9
        scraper = textwrap.dedent(
            """
            from prometheus_client import generate_latest
            from youthhub import metrics
            metrics.QueueCollector.collect = lambda self: []  # no database in this process
            print(generate_latest(metrics.registry()).decode())
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", scraper], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(out.stdout)
            for s in family.samples
        }
        assert value(samples, "youthhub_websocket_connections", kind="youth") == 1
        assert value(samples, "youthhub_errors_total", kind="youth", code="bad_frame") == 2
    finally:
        live.kill()
        live.wait(timeout=10)
