"""HTTP for the queue: who is on now (youth), the kiosk's ticket, the arena's QR code.

Thin: parse, call one selector or service, answer JSON. Like chat.views these use no
cookies, so CSRF does not apply; nothing here stores or logs who asked.
"""

import segno
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chat import services as chat_services
from chat.errors import ServiceError
from chat.views import _json_body, error_response

from . import selectors, services
from .models import Pool, Site


@never_cache
@require_GET
def overview(request):
    """Who youth can choose now: `?site=<slug>` for an arena's drop-in, else the chat pool."""
    site_slug, pool_slug = request.GET.get("site"), request.GET.get("pool")
    if site_slug:
        site = Site.objects.filter(slug=site_slug).first()
        if site is None:
            return error_response(ServiceError("bad_site", "There is no such place."))
        return JsonResponse(selectors.overview(site=site))
    pool = Pool.objects.filter(slug=pool_slug).first() if pool_slug else selectors.default_pool()
    if pool_slug and pool is None:
        return error_response(ServiceError("bad_site", "There is no such chat."))
    return JsonResponse(selectors.overview(pool=pool))


def qr_svg(data: str) -> str:
    return segno.make(data, error="m").svg_inline(scale=6, dark="#111", light="#fff")


@csrf_exempt
@require_POST
def kiosk_ticket(request, slug):
    """The arena's tablet takes a ticket for a youth without a phone session.

    A fresh anonymous identity is made for the ticket and handed over at once as a return
    code (inside a QR code): the youth's phone opens `/#resume=CODE`, which takes the
    identity over and ends the kiosk's hold on it. The code is never stored in clear.
    """
    try:
        body = _json_body(request)
        target = body.get("target", "any")
        youth, _token = chat_services.youth_session_create()
        conversation = services.queue_request(youth=youth, target=target, site_slug=slug)
        code = chat_services.youth_return_code_issue(youth=youth)
    except ServiceError as exc:
        return error_response(exc)
    follow = request.build_absolute_uri(reverse("youth")) + "#resume=" + code
    frame = selectors.queued_frame_for(conversation)
    return JsonResponse(
        {
            "ticket": conversation.ticket,
            "return_code": code,
            "follow_url": follow,
            "qr_svg": qr_svg(follow),
            "position": frame["position"],
            "eta_range": frame["eta_range"],
        },
        status=201,
    )


@require_GET
def site_qr(request, slug):
    """A poster QR code for the arena: the drop-in flow on the youth's own phone."""
    site = get_object_or_404(Site, slug=slug)
    url = request.build_absolute_uri(reverse("dropin", args=[site.slug]))
    return HttpResponse(qr_svg(url), content_type="image/svg+xml")
