"""Settings for the test suite: the real settings module on a chosen backend.

YOUTHHUB_TEST_BACKEND=services (default): PostgreSQL + Redis (tests/services.py).
YOUTHHUB_TEST_BACKEND=embedded: SQLite + in-memory channel layer, as `make run` serves.
"""

import os
import tempfile

from tests import services

BACKEND = os.environ.get("YOUTHHUB_TEST_BACKEND", "services")
if BACKEND not in ("services", "embedded"):
    raise RuntimeError("YOUTHHUB_TEST_BACKEND must be 'services' or 'embedded'")

if BACKEND == "embedded":
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    SERVICES_AVAILABLE = False
else:
    SERVICES_AVAILABLE = services.configure()

os.environ.setdefault("YOUTHHUB_DATA_DIR", tempfile.mkdtemp(prefix="youthhub-test-"))
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)
os.environ.setdefault(
    # Two master keys: k2 is current, k1 is an older key that must still decrypt.
    "YOUTHHUB_DATA_KEYS",
    "k2:Q2hhbmdlTWUtdGhpcy1pcy1hLXRlc3Qta2V5LTAwMDA,k1:dGVzdC1rZXktb25lLWZvci15b3V0aGh1Yi10ZXN0czE",
)
os.environ.setdefault("YOUTHHUB_CHANNEL_PREFIX", f"yhtest{os.getpid()}")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
# Password-only logins for the suite (and the browser tests' server, which inherits this
# environment); tests/test_auth.py turns two-factor on where it tests it.
os.environ.setdefault("YOUTHHUB_REQUIRE_2FA", "0")

from youthhub.settings import *  # noqa: E402,F403

TEST_BACKEND = BACKEND
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Time-driven queue changes are driven by the tests (`queue_tick(now=...)`), not a timer;
# the browser tests' server turns the timer on through the environment.
YOUTHHUB_QUEUE_TICK_SECONDS = int(os.environ.get("YOUTHHUB_QUEUE_TICK_SECONDS", "0"))

# The channel-layer heartbeat (chat/layerwatch.py) would start a task in every test's event
# loop; tests/test_layerwatch.py drives it directly, and the cluster's workers run it.
YOUTHHUB_LAYER_HEARTBEAT_MS = int(os.environ.get("YOUTHHUB_LAYER_HEARTBEAT_MS", "0"))
