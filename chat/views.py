"""HTTP API for anonymous identity. Thin: parse, call one service, answer JSON.

CSRF does not apply: these endpoints use no cookies (the youth token travels in the
Authorization header or the body), so a forged cross-site request carries no authority.
"""

import json

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .errors import ServiceError

STATUS = {"rate_limited": 429, "unauthorized": 401, "unavailable": 503}


def error_response(exc: ServiceError) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status=STATUS.get(exc.code, 400)
    )


def _json_body(request) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise ServiceError("bad_json", _("The body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise ServiceError("bad_request", _("The body must be a JSON object."))
    return data


def _bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _space, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ServiceError("unauthorized", _("This chat session is not valid. Start a new one."))
    return token.strip()


@csrf_exempt
@require_POST
def session_create(request):
    try:
        youth, token = services.youth_session_create()
    except ServiceError as exc:
        return error_response(exc)
    return JsonResponse({"token": token, "alias": youth.alias}, status=201)


@csrf_exempt
@require_POST
def return_code_create(request):
    try:
        youth = services.youth_authenticate(_bearer(request))
        code = services.youth_return_code_issue(youth=youth)
    except ServiceError as exc:
        return error_response(exc)
    return JsonResponse({"return_code": code}, status=201)


@csrf_exempt
@require_POST
def session_resume(request):
    try:
        code = _json_body(request).get("return_code")
        if not isinstance(code, str) or len(code) > 64:
            raise ServiceError("bad_request", _('Send {"return_code": "XXXX-XXXX-XXXX"}.'))
        youth, token = services.youth_resume(return_code=code)
    except ServiceError as exc:
        return error_response(exc)
    return JsonResponse({"token": token, "alias": youth.alias})
