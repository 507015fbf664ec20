"""Settings of the bare relay (deploy/bench/relay.py): Channels and a Redis channel layer,
configured like youthhub's (same backend choice, encrypted payloads), and nothing else."""

import os

SECRET_KEY = "bench-relay-settings-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
ASGI_APPLICATION = "deploy.bench.relay:application"
USE_TZ = True

_kind = os.environ.get("BENCH_RELAY_LAYER", "pubsub")
if _kind not in ("pubsub", "core"):
    raise RuntimeError("BENCH_RELAY_LAYER must be 'pubsub' or 'core'")
_url = os.environ.get("BENCH_RELAY_REDIS_URL", "redis://127.0.0.1:6379/0")
# The same host configuration as youthhub/settings.py for each layer.
_host: str | dict = _url
if _kind == "core":
    _host = {"address": _url, "max_connections": 2000, "socket_timeout": 15}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": (
            "channels_redis.pubsub.RedisPubSubChannelLayer"
            if _kind == "pubsub"
            else "channels_redis.core.RedisChannelLayer"
        ),
        "CONFIG": {
            "hosts": [_host],
            "prefix": "benchrelay",
            # youthhub encrypts every channel-layer payload (YOUTHHUB_LAYER_ENCRYPTION): so
            # does the relay, or the comparison would flatter it.
            "symmetric_encryption_keys": [os.environ.get("BENCH_RELAY_LAYER_KEY", SECRET_KEY)],
        },
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
