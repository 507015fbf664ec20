"""youthhub settings, driven by environment variables (every one is listed in README.md).

Two ways to run:
- embedded default (no DATABASE_URL / REDIS_URL): SQLite and the in-memory channel layer in
  one process; secrets are generated once into YOUTHHUB_DATA_DIR so a demo needs no set-up.
- production: PostgreSQL from DATABASE_URL, Redis from REDIS_URL (channel layer and cache),
  SECRET_KEY and YOUTHHUB_DATA_KEYS required.
"""

import base64
import json
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """Value of NAME, or of the file named by NAME_FILE (for container secrets)."""
    if name in os.environ:
        return os.environ[name]
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return default


def envbool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    value = env(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in (env(name) or default).split(",") if item.strip()]


DATABASE_URL = env("DATABASE_URL")
REDIS_URL = env("REDIS_URL")
EMBEDDED = not DATABASE_URL
DATA_DIR = Path(env("YOUTHHUB_DATA_DIR") or BASE_DIR / "var")


def _embedded_secrets() -> dict:
    """Secrets for the embedded default, generated on first use and kept in DATA_DIR."""
    path = DATA_DIR / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    values = {"SECRET_KEY": secrets.token_urlsafe(50), "YOUTHHUB_DATA_KEYS": f"k1:{key}"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    return values


def _secret(name: str) -> str:
    value = env(name)
    if value:
        return value
    if EMBEDDED:
        return _embedded_secrets()[name]
    raise ImproperlyConfigured(f"{name} must be set when DATABASE_URL is set")


SECRET_KEY = _secret("SECRET_KEY")
# Master keys that wrap the per-conversation data keys: "id:base64key,id:base64key".
# The first entry is the current key for new writes; the others still decrypt.
YOUTHHUB_DATA_KEYS = _secret("YOUTHHUB_DATA_KEYS")

DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
HTTPS = envbool("YOUTHHUB_HTTPS", False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "youthhub",  # retention (`manage.py purge`) and the deploy checks of youthhub/security.py
    "youthhub.staff",
    "youthhub.audit",
    "youthhub.stats",
    "youthhub.handover",
    "youthhub.accounts",
    "dropin",
    "chat",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy and Permissions-Policy (youthhub/security.py).
    "youthhub.security.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's LocaleMiddleware, except that youth pages ignore Accept-Language (bokmål unless
    # the youth chose English with the switcher); see frontend/middleware.py.
    "frontend.middleware.YouthFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): has this session given a two-factor code (django-otp)?
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Staff logins: idle and absolute expiry, and no access before the two-factor code
    # (youthhub/accounts/middleware.py).
    "youthhub.accounts.middleware.StaffSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "youthhub.urls"
ASGI_APPLICATION = "youthhub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if DATABASE_URL:
    # A pool of connections per worker (psycopg_pool): a new PostgreSQL backend per database
    # call cost 4.5 ms of a worker's one database thread and most of PostgreSQL's CPU
    # (docs/benchmarks.md). Not CONN_MAX_AGE: under ASGI every HTTP request runs in a thread
    # of its own, and a persistent connection stays open after its thread is done (measured:
    # 30 requests left 12 connections open). Each use borrows a connection, checked first
    # (a PostgreSQL restart then costs nothing), and gives it back.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_health_checks=True)}
    if envbool("YOUTHHUB_DB_POOL", True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": envint("YOUTHHUB_DB_POOL_MIN", 1),
            "max_size": envint("YOUTHHUB_DB_POOL_MAX", 10),
            "timeout": 10,  # seconds a call waits for a free connection before it fails
        }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "youthhub.sqlite3",
            # WAL and a busy timeout let the embedded server read while it writes; IMMEDIATE
            # transactions take the write lock up front, so read-then-write (next seq) is safe.
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CHANNEL_LAYER_KIND = env("YOUTHHUB_CHANNEL_LAYER") or "pubsub"
if CHANNEL_LAYER_KIND not in ("pubsub", "core"):
    raise ImproperlyConfigured("YOUTHHUB_CHANNEL_LAYER must be 'pubsub' or 'core'")
if REDIS_URL:
    # pubsub (the default, chosen by measurement: docs/benchmarks.md) needs nothing more.
    # RedisChannelLayer does, with redis-py 8: its pool allows 100 connections and the core
    # layer takes one per concurrent operation (a burst of sockets connecting failed with
    # MaxConnectionsError), and its 5 s socket timeout ends the core layer's 5 s BZPOPMIN
    # receive on a quiet channel with a TimeoutError that closes the socket (1011).
    _layer_host: str | dict = REDIS_URL
    if CHANNEL_LAYER_KIND == "core":
        _layer_host = {"address": REDIS_URL, "max_connections": 2000, "socket_timeout": 15}
    _layer_config: dict = {
        "hosts": [_layer_host],
        "prefix": env("YOUTHHUB_CHANNEL_PREFIX") or "yh",
    }
    if CHANNEL_LAYER_KIND == "core":
        # The core layer's `capacity` (default 100) bounds one Redis key per worker process,
        # which every socket of that worker shares: a busy worker with a thousand sockets went
        # past 100 waiting frames and the layer dropped frames for all of them (the bench saw
        # its heartbeat lost and every socket told to reconnect). A backlog is a delay, not a
        # loss.
        _layer_config["capacity"] = 10_000
    if envbool("YOUTHHUB_LAYER_ENCRYPTION", True):
        # channels_redis derives a Fernet key (SHA-256) from each entry and encrypts every
        # payload it puts in Redis (pub/sub messages included); the first entry encrypts, all
        # decrypt. YOUTHHUB_LAYER_KEYS="new,old" rotates without touching SECRET_KEY.
        _layer_config["symmetric_encryption_keys"] = envlist("YOUTHHUB_LAYER_KEYS", "") or [
            SECRET_KEY
        ]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": (
                "channels_redis.pubsub.RedisPubSubChannelLayer"
                if CHANNEL_LAYER_KIND == "pubsub"
                else "channels_redis.core.RedisChannelLayer"
            ),
            "CONFIG": _layer_config,
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("YOUTHHUB_CHANNEL_PREFIX") or "yh",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/staff/login/"
LOGIN_REDIRECT_URL = "/staff/"
LOGOUT_REDIRECT_URL = "/staff/login/"

# Staff, partner and supervisor logins (youthhub/accounts; README "Two-factor login").
# Two-factor (TOTP) after the password; off only for the demo and the test suite.
YOUTHHUB_REQUIRE_2FA = envbool("YOUTHHUB_REQUIRE_2FA", True)
OTP_TOTP_ISSUER = env("YOUTHHUB_TOTP_ISSUER") or "youthhub"  # the name shown in the app
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the admin never shows a device's secret or QR code
# A username is locked for LOCK_SECONDS after FAILURES wrong passwords or codes within that
# time; every attempt also counts against a service-wide limit per minute.
YOUTHHUB_LOGIN_FAILURES = envint("YOUTHHUB_LOGIN_FAILURES", 5)
YOUTHHUB_LOGIN_LOCK_SECONDS = envint("YOUTHHUB_LOGIN_LOCK_SECONDS", 15 * 60)
YOUTHHUB_LOGINS_PER_MINUTE = envint("YOUTHHUB_LOGINS_PER_MINUTE", 60)
# A login lasts at most a shift, ends after this long without activity, and its cookie goes
# when the browser closes.
SESSION_COOKIE_AGE = envint("YOUTHHUB_STAFF_SESSION_SECONDS", 12 * 3600)
YOUTHHUB_STAFF_IDLE_SECONDS = envint("YOUTHHUB_STAFF_IDLE_SECONDS", 2 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = envbool("YOUTHHUB_SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on
# same-site form posts and CSRF protection rightly refuses them.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Django's default, written out: no window another site opens can reach into ours.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if HTTPS:
    # nginx terminates TLS and must send X-Forwarded-Proto (deploy/); plain http is redirected.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = envint("YOUTHHUB_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("YOUTHHUB_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("YOUTHHUB_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading commits the whole registered domain to HTTPS in every browser, for
        # months: the domain owner's decision (YOUTHHUB_HSTS_PRELOAD=true), not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

LANGUAGE_CODE = "nb"
# Each name in its own language: the switcher shows them as they are (never translated).
LANGUAGES = [("nb", "Norsk"), ("en", "English")]
TIME_ZONE = "Europe/Oslo"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "frontend" / "locale"]
# The switcher's cookie (readable by the page, so quick exit can delete it) lasts until the
# browser closes.
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = HTTPS

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("YOUTHHUB_STATIC_ROOT") or BASE_DIR / "staticfiles")
# The embedded server serves static files itself; behind nginx, set this to false.
SERVE_STATIC = envbool("YOUTHHUB_SERVE_STATIC", EMBEDDED)

# Product limits (see docs/protocol.md).
YOUTHHUB_MAX_MESSAGE_CHARS = 2000
YOUTHHUB_MAX_FRAME_CHARS = 32 * 1024
YOUTHHUB_REPLAY_LIMIT = envint("YOUTHHUB_REPLAY_LIMIT", 200)
# Each worker's heartbeat through the channel layer (chat/layerwatch.py): after Redis trouble
# its sockets reconnect and catch up. 0 turns it off (the in-memory layer loses nothing).
YOUTHHUB_LAYER_HEARTBEAT_MS = envint("YOUTHHUB_LAYER_HEARTBEAT_MS", 250 if REDIS_URL else 0)
YOUTHHUB_FRAMES_PER_SECOND = envint("YOUTHHUB_FRAMES_PER_SECOND", 5)
YOUTHHUB_FRAME_BURST = envint("YOUTHHUB_FRAME_BURST", 20)
YOUTHHUB_SESSIONS_PER_MINUTE = envint("YOUTHHUB_SESSIONS_PER_MINUTE", 60)
YOUTHHUB_RESUMES_PER_MINUTE = envint("YOUTHHUB_RESUMES_PER_MINUTE", 30)
# New messages one anonymous identity may send a minute, over all its sockets (chat.services).
YOUTHHUB_MESSAGES_PER_MINUTE = envint("YOUTHHUB_MESSAGES_PER_MINUTE", 30)
if YOUTHHUB_MESSAGES_PER_MINUTE < 1:
    raise ImproperlyConfigured("YOUTHHUB_MESSAGES_PER_MINUTE must be at least 1")

# The queue (docs/queue.md)
YOUTHHUB_DEFAULT_POOL = env("YOUTHHUB_DEFAULT_POOL") or ""  # slug; "" = the first pool
YOUTHHUB_STAFF_PRESENCE_SECONDS = envint("YOUTHHUB_STAFF_PRESENCE_SECONDS", 120)
YOUTHHUB_DEFAULT_HANDLE_MINUTES = envint("YOUTHHUB_DEFAULT_HANDLE_MINUTES", 20)
YOUTHHUB_NAMED_WAIT_SECONDS = envint("YOUTHHUB_NAMED_WAIT_SECONDS", 300)
YOUTHHUB_NOSHOW_SECONDS = envint("YOUTHHUB_NOSHOW_SECONDS", 600)
YOUTHHUB_QUEUE_TICK_SECONDS = envint("YOUTHHUB_QUEUE_TICK_SECONDS", 15)
# The supervisors' live panel raises a capacity alert when a new request would wait longer.
YOUTHHUB_CAPACITY_ALERT_MINUTES = envint("YOUTHHUB_CAPACITY_ALERT_MINUTES", 20)
# How long a youth's yes to a handover lasts (then the service loses access; docs/handover.md).
YOUTHHUB_CONSENT_DAYS = envint("YOUTHHUB_CONSENT_DAYS", 30)
# Retention (`manage.py purge`, daily; docs/privacy.md): a conversation's content is destroyed
# this long after it closed (statistics are rebuilt only inside this window) ...
YOUTHHUB_RETENTION_DAYS = envint("YOUTHHUB_RETENTION_DAYS", 30)
# ... and an anonymous identity not seen for this long, with nothing open and nothing kept, is
# deleted with everything it has; what is left of a closed conversation goes after this long.
YOUTHHUB_IDENTITY_DAYS = envint("YOUTHHUB_IDENTITY_DAYS", 2 * YOUTHHUB_RETENTION_DAYS)
if YOUTHHUB_RETENTION_DAYS < 1 or YOUTHHUB_IDENTITY_DAYS < YOUTHHUB_RETENTION_DAYS:
    raise ImproperlyConfigured(
        "YOUTHHUB_RETENTION_DAYS must be at least 1 and YOUTHHUB_IDENTITY_DAYS at least as long"
    )

# Quick exit on the youth page goes here (replacing the page in the history): something
# neutral that loads fast.
YOUTHHUB_QUICK_EXIT_URL = env("YOUTHHUB_QUICK_EXIT_URL") or "https://www.yr.no/"
if not YOUTHHUB_QUICK_EXIT_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("YOUTHHUB_QUICK_EXIT_URL must be an http(s) URL")

# Operator metrics at /metrics (youthhub/metrics.py) for a scraper that sends
# "Authorization: Bearer <this>"; unset, /metrics is a 404.
YOUTHHUB_METRICS_TOKEN = env("YOUTHHUB_METRICS_TOKEN") or ""

LOG_LEVEL = env("LOG_LEVEL") or "INFO"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "youthhub.privacy.RedactAddresses"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Daphne's debug lines name the client address; never let them through.
        "daphne": {"level": "INFO"},
        "django.server": {"level": "WARNING"},
        # Replaces Django's default handlers for its loggers (django.request, django.security
        # ...): its DEBUG-only console handler has no address filter, and `mail_admins` would
        # mail the whole request, user agent included. These records name the path only.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
