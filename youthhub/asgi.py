"""ASGI entry point: `youthhub.asgi:application` (HTTP + WebSocket)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "youthhub.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402
from youthhub.accounts.sockets import SocketLoginMiddleware  # noqa: E402
from youthhub.privacy import StripClientAddress  # noqa: E402

http_app = ASGIStaticFilesHandler(django_http) if settings.SERVE_STATIC else django_http

application = StripClientAddress(
    ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": AllowedHostsOriginValidator(
                # The session's user, then its two-factor device and expiry (accounts).
                AuthMiddlewareStack(SocketLoginMiddleware(URLRouter(websocket_urlpatterns)))
            ),
        }
    )
)
