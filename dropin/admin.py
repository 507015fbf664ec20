from django.contrib import admin

from .models import OpeningException, OpeningHours, Pool, Site


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0
    help_text = (
        "Europe/Oslo time; a closing time at or before the opening time means past midnight."
    )


class OpeningExceptionInline(admin.TabularInline):
    model = OpeningException
    extra = 0
    help_text = "Replaces that date's weekly hours; leave the times empty for closed all day."


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "pool", "ticket_prefix")
    list_filter = ("pool",)
    prepopulated_fields = {"slug": ("name",)}
    inlines = [OpeningHoursInline, OpeningExceptionInline]


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
