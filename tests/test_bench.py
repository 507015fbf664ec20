"""The benchmark machinery (deploy/bench, `make bench`) at a tiny load: a one-worker cluster,
3 conversations, 5 idle youth, 3 seconds of talking, then the bare relay at the same load.
The numbers mean nothing here; that messages get through both ways and the report has its
fields is what is checked. The real run and its numbers: docs/benchmarks.md."""

import json
import os
import shutil
import urllib.parse

import pytest
from django.conf import settings

from tests.cluster import _SBIN, _require, free_port_range
from tests.cluster import _drop_database as _drop

pytestmark = pytest.mark.services


def _need(binary: str) -> None:
    path = os.environ.get("PATH", "") + _SBIN
    _require(binary, shutil.which(binary, path=path) is not None)


def _drop_database(url: str) -> None:
    _drop(url, urllib.parse.urlsplit(url).path.lstrip("/"))


def test_both_channel_layers_take_the_encrypted_config():
    """YOUTHHUB_CHANNEL_LAYER picks the class; the same CONFIG (hosts, prefix,
    symmetric_encryption_keys) must work for either, and both must encrypt."""
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    assert config["symmetric_encryption_keys"]
    for cls in (RedisChannelLayer, RedisPubSubChannelLayer):
        layer = cls(**config)
        blob = layer.serialize({"type": "deliver", "frame": {"text": "hemmelig"}})
        assert b"hemmelig" not in blob
        assert layer.deserialize(blob)["frame"]["text"] == "hemmelig"


@pytest.mark.timeout(180)
def test_bench_runs_youthhub_and_the_relay_at_a_tiny_load(tmp_path):
    _need("nginx")
    _need("redis-server")
    from deploy.bench import report
    from deploy.bench.run import Bench, parse

    server = os.environ["DATABASE_URL"]
    database_url = urllib.parse.urlsplit(server)._replace(path=f"/yhbench_{os.getpid()}").geturl()
    workers = free_port_range(1)
    relay = free_port_range(1)
    opts = parse(
        [
            "--workers=1",
            "--layers=pubsub",
            "--primary-layer=pubsub",
            "--steps=3",
            "--relay-steps=3",
            "--compare-at=3",
            "--idle=5",
            "--duration=3",
            "--min-messages=0",
            "--burst=3",
            "--grace=2",
            "--generators=1",
            "--no-profile",
            f"--dir={tmp_path / 'cluster'}",
            f"--out-dir={tmp_path / 'out'}",
            f"--port={free_port_range(1)}",
            f"--worker-port={workers}",
            f"--redis-port={free_port_range(1)}",
            f"--relay-port={relay}",
            f"--database-url={database_url}",
            "--time-limit=150",
        ]
    )
    bench = Bench(opts)
    try:
        results = bench.run()
        path = bench.write()
    finally:
        bench.close()
        try:
            _drop_database(database_url)
        except Exception as exc:  # a leftover database must not fail the test
            print(f"could not drop the bench database: {exc}")

    saved = json.loads(path.read_text())
    assert saved["runs"] and saved["machine"]["cpus"]
    targets = {run["target"]: run for run in results["runs"]}
    assert set(targets) == {"youthhub", "relay"}
    for run in targets.values():
        assert run["layer"] == "pubsub" and run["workers"] == 1
        assert run["idle"]["connected"] == 5, run["idle"]
        assert run["idle"]["kb_per_socket"] is not None
        assert run["burst"]["connected"] == 3, run["burst"]
        step = run["steps"][0]
        assert step["conversations"] == 3 and step["prepare"]["ready"] == 3, step["prepare"]
        # 3 conversations, 1 message a second, alternating sides: both sides talked and
        # every message reached the other side.
        assert step["sent"] >= 6 and step["delivered"] == step["sent"], step
        assert step["lost"] == 0
        assert step["frames_in"].get("typing") and step["frames_in"].get("read")
        for field in ("p50", "p99", "max"):
            assert step["delivery"][field] > 0
        assert step["sockets"] >= 5 + 3 + 1
        assert step["messages_per_second"] > 0
        assert set(step["cpu"]["cpu_seconds"]) >= {"workers", "generator", "redis", "postgres"}
        assert step["end"]["ended"] == 3
    youthhub = targets["youthhub"]["steps"][0]
    assert youthhub["frames_in"].get("staff_context") and not youthhub["errors"], youthhub
    table = report.markdown(results)
    assert "| youthhub | pubsub | 1 | 3 |" in table and "| relay | pubsub | 1 | 3 |" in table
    assert "youthhub / relay p99 at 3 conv, 1w pubsub" in results["summary"], results["summary"]
    # Nothing it started is left running.
    assert not bench.relay_procs and not bench.generators
