"""HTTP for the queue: who is on now (youth), the kiosk's ticket, the arena's QR code.

Thin: parse, call one selector or service, answer JSON. Like chat.views these use no
cookies, so CSRF does not apply; nothing here stores or logs who asked.
"""

import io

import segno
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chat.errors import ServiceError
from chat.views import _json_body, error_response

from . import selectors, services
from .models import Site


@never_cache
@require_GET
def overview(request):
    """Who youth can choose now: `?site=<slug>` for an arena's drop-in, else the chat pool."""
    try:
        pool, site = selectors.where(
            site_slug=request.GET.get("site") or None, pool_slug=request.GET.get("pool")
        )
    except ServiceError as exc:
        return error_response(exc)
    return JsonResponse(selectors.overview(pool=pool, site=site))


def qr_svg(data: str, *, standalone: bool = False) -> str:
    """A QR code as SVG: inline markup for the kiosk page, or (standalone) a whole SVG
    document with its namespace, which an <img> needs to render it."""
    qr = segno.make(data, error="m")
    if not standalone:
        return qr.svg_inline(scale=6, dark="#111", light="#fff")
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=6, dark="#111", light="#fff", xmldecl=False)
    return out.getvalue().decode()


@csrf_exempt
@require_POST
def kiosk_ticket(request, slug):
    """The arena's tablet takes a ticket (services.kiosk_ticket_take) and shows it with a
    QR code of `/#resume=CODE` that moves it to the youth's phone."""
    try:
        target = _json_body(request).get("target", "any")
        conversation, code = services.kiosk_ticket_take(site_slug=slug, target=target)
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
            "eta_seconds": frame["eta_seconds"],
            "eta_range": frame["eta_range"],
        },
        status=201,
    )


@require_GET
def site_qr(request, slug):
    """A poster QR code for the arena: the drop-in flow on the youth's own phone."""
    site = get_object_or_404(Site, slug=slug)
    url = request.build_absolute_uri(reverse("dropin", args=[site.slug]))
    return HttpResponse(qr_svg(url, standalone=True), content_type="image/svg+xml")
