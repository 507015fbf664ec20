"""Supervisor pages: statistics (page, CSV, charts) and the live panel. Supervisors only:
anyone else logged in gets 403, anonymous visitors the login page."""

import csv
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chat.selectors import staff_profile

from . import charts, selectors


def supervisor_required(view):
    @wraps(view)
    @login_required
    @never_cache
    @require_GET
    def wrapped(request, *args, **kwargs):
        profile = staff_profile(request.user)
        if profile is None or not profile.is_supervisor:
            raise PermissionDenied(_("Only supervisors can see the statistics."))
        return view(request, *args, **kwargs)

    return wrapped


def now_strings() -> dict:
    return {
        "minutes": _("{n} min"),
        "unknown": _("unknown"),
        "nobody_on": _("nobody is on"),
        "alert": _("Capacity alert: a new request would wait more than {n} minutes."),
    }


def _figures(request):
    filters = selectors.parse_filters(request.GET)
    return filters, selectors.figures(filters)


@supervisor_required
def stats_page(request):
    try:
        filters, tables = _figures(request)
    except selectors.BadFilter as exc:
        filters = selectors.parse_filters({})
        return render(
            request,
            "frontend/stats.html",
            {
                "error": str(exc),
                "filters": filters,
                "places": selectors.places(),
                "tables": {},
                "now_strings": now_strings(),
            },
            status=400,
        )
    return render(
        request,
        "frontend/stats.html",
        {
            "filters": filters,
            "query": urlencode(filters.query()),
            "places": selectors.places(),
            "tables": tables,
            "charts": [name for name in charts.CHARTS if name in tables],
            "threshold": selectors.THRESHOLD,
            "now_strings": now_strings(),
        },
    )


@supervisor_required
def stats_csv(request):
    """Exactly what the page shows: every table's rows, total and derived figures."""
    try:
        filters, tables = _figures(request)
    except selectors.BadFilter as exc:
        return JsonResponse({"error": {"code": "bad_filter", "message": str(exc)}}, status=400)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"youthhub-{filters.start}-{filters.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow([_("table"), _("row"), _("value"), _("staff on"), _("chat places")])
    for table in tables.values():
        for row in table.cells() + table.footer():
            writer.writerow([table.title, *row])
    return response


@supervisor_required
def stats_chart(request, name):
    if name not in charts.CHARTS:
        raise Http404
    try:
        _filters, tables = _figures(request)
    except selectors.BadFilter:
        raise Http404 from None
    return HttpResponse(charts.chart_svg(tables[name]), content_type="image/svg+xml")


@supervisor_required
def stats_now(request):
    """The live panel, for the same place filter as the page (`?place=`)."""
    try:
        filters = selectors.parse_filters({"place": request.GET.get("place", "")})
    except selectors.BadFilter as exc:
        return JsonResponse({"error": {"code": "bad_filter", "message": str(exc)}}, status=400)
    return JsonResponse(selectors.now_panel(filters.place))
