"""Writes for sites and opening hours."""

from datetime import time

from django.db import transaction

from .models import OpeningHours, Site


def site_ensure(*, slug: str, name: str, weekly_hours: dict[int, tuple[time, time]]) -> Site:
    """Create or update a site and replace its weekly opening hours."""
    with transaction.atomic():
        site, _ = Site.objects.update_or_create(slug=slug, defaults={"name": name})
        site.opening_hours.all().delete()
        OpeningHours.objects.bulk_create(
            OpeningHours(site=site, weekday=day, opens=opens, closes=closes)
            for day, (opens, closes) in weekly_hours.items()
        )
    return site
