"""Keep youth addresses out of the application and out of every log line.

Three layers, each enough on its own for its part:
- `StripClientAddress` removes the client address from every ASGI scope before Django or
  Channels see it, so no view, consumer or model can record it (REMOTE_ADDR is empty).
- `AnonymousAccessLog` is Daphne's access log without the address column.
- `RedactAddresses` is a logging filter that masks anything shaped like an IPv4/IPv6 address
  in any log record (Daphne's debug lines, tracebacks quoting a scope, third-party code).
"""

import ipaddress
import logging
import re

from daphne.access import AccessLogGenerator

_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
_IPV6 = r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])"
ADDRESS_RE = re.compile(f"{_IPV4}|{_IPV6}")


def _mask(match: re.Match) -> str:
    try:
        ipaddress.ip_address(match.group(0))
    except ValueError:
        return match.group(0)  # a time (12:30:15) or a version, not an address
    return "[address]"


def redact(text: str) -> str:
    return ADDRESS_RE.sub(_mask, text)


class RedactAddresses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class StripClientAddress:
    """ASGI middleware: drop `client` (and forwarded-for headers) from the scope."""

    _DROP = {b"x-forwarded-for", b"x-real-ip", b"forwarded", b"cf-connecting-ip"}

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
            scope["client"] = None
            scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k not in self._DROP]
        return await self.app(scope, receive, send)


class AnonymousAccessLog(AccessLogGenerator):
    """Daphne's NCSA-style access log with the host column always '-'."""

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        super().write_entry("-", date, request, status, length, ident, user)
