"""Which language a page is in.

Youth-facing pages (the youth chat, the drop-in phone page, the kiosk, the youth APIs) are
Norwegian first: they are in bokmål unless the person chose another language with the switcher
(Django's `django_language` cookie). The browser's Accept-Language is deliberately ignored
there: most Norwegian teenagers run their phones in English but expect a Norwegian service in
Norwegian, and the arena's kiosk tablet must not change language with its browser settings.

Staff pages (`/staff/`, `/admin/`) are a work tool on the staff member's own machine: there the
usual Django order applies (cookie, then Accept-Language, then bokmål).
"""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.cache import patch_vary_headers

STAFF_PREFIXES = ("/staff/", "/admin/", "/partner/", "/supervisor/")


def chosen_language(request) -> str:
    """The language from the switcher's cookie, else the default (bokmål)."""
    code = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if code:
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            pass
    return settings.LANGUAGE_CODE


class YouthFirstLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request):
        if request.path_info.startswith(STAFF_PREFIXES):
            return super().process_request(request)
        translation.activate(chosen_language(request))
        request.LANGUAGE_CODE = translation.get_language()
        return None

    def process_response(self, request, response):
        if request.path_info.startswith(STAFF_PREFIXES):
            return super().process_response(request, response)
        patch_vary_headers(response, ("Cookie",))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response
