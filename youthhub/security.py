"""Security headers Django does not set itself: Content-Security-Policy and Permissions-Policy.

Django's SecurityMiddleware already sends X-Content-Type-Options (SECURE_CONTENT_TYPE_NOSNIFF),
Referrer-Policy (SECURE_REFERRER_POLICY), Cross-Origin-Opener-Policy (its default,
"same-origin") and, with YOUTHHUB_HTTPS, Strict-Transport-Security; XFrameOptionsMiddleware
sends X-Frame-Options. This middleware adds the rest to every response Django makes.

The policy allows no inline script and no inline style: every page loads its ES modules and
CSS from /static/, data for a script travels in `json_script` blocks (type
application/json, never executed), the kiosk's QR code is an SVG made on the server
(presentation attributes only, no `style`), and the statistics charts are pygal SVG
documents loaded as images (a document loaded as an image runs no script). WebSockets are
allowed to this host only: `'self'` covers ws/wss in current browsers, the explicit
ws(s)://host is there for older Safari versions that do not count ws: as 'self'.

Static files served by nginx do not pass through Django: deploy/README.md shows the header
nginx adds there (X-Content-Type-Options; a policy matters only for documents).
"""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.core.exceptions import DisallowedHost
from django.utils.deprecation import MiddlewareMixin

# Every directive except connect-src, which names this host's WebSocket origin.
CSP_DIRECTIVES = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("font-src", "'self'"),
    ("manifest-src", "'self'"),
    ("worker-src", "'self'"),
    ("object-src", "'none'"),
    ("frame-ancestors", "'none'"),
    ("base-uri", "'self'"),
    ("form-action", "'self'"),
)

# Powerful features nobody on this site needs: off for the page and anything it embeds. Only
# names Chromium knows (an unknown one is a console error there, see the browser tests).
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "camera",
        "microphone",
        "geolocation",
        "payment",
        "usb",
        "serial",
        "hid",
        "midi",
        "magnetometer",
        "gyroscope",
        "accelerometer",
        "display-capture",
        "browsing-topics",
    )
)


def content_security_policy(host: str | None, *, secure: bool) -> str:
    """The policy for a page served to `host` (None: the host is unknown or not allowed)."""
    connect = ["'self'"]
    if host:
        connect.append(f"wss://{host}")
        if not secure:
            connect.append(f"ws://{host}")
    directives = [*CSP_DIRECTIVES, ("connect-src", " ".join(connect))]
    if getattr(settings, "HTTPS", False):
        directives.append(("upgrade-insecure-requests", ""))
    return "; ".join(f"{name} {value}".strip() for name, value in directives)


class SecurityHeadersMiddleware(MiddlewareMixin):
    """Adds Content-Security-Policy and Permissions-Policy (unless a view set its own)."""

    def process_response(self, request, response):
        try:
            host = request.get_host()
        except DisallowedHost:
            host = None
        response.headers.setdefault(
            "Content-Security-Policy", content_security_policy(host, secure=request.is_secure())
        )
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


MIDDLEWARE_PATH = "youthhub.security.SecurityHeadersMiddleware"


@register(Tags.security, deploy=True)
def check_security_headers(app_configs, **kwargs):
    if MIDDLEWARE_PATH in settings.MIDDLEWARE:
        return []
    return [
        Warning(
            f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: pages go out without a "
            "Content-Security-Policy.",
            id="youthhub.W001",
        )
    ]


@register(Tags.security, deploy=True)
def check_channel_layer_encryption(app_configs, **kwargs):
    """Message text crosses Redis in channel-layer events: it must be encrypted there."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if not layer.get("BACKEND", "").startswith("channels_redis."):
        return []  # in-memory layer: nothing leaves the process
    if layer.get("CONFIG", {}).get("symmetric_encryption_keys"):
        return []
    return [
        Warning(
            "The Redis channel layer sends message text unencrypted.",
            hint="Leave YOUTHHUB_LAYER_ENCRYPTION on (the default).",
            id="youthhub.W002",
        )
    ]
