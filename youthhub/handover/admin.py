"""The directory and partner accounts are managed here. Handovers, consents and consultations
are shown read-only and without content: the admin never decrypts a summary or a question."""

from django.contrib import admin

from .models import Consent, Consultation, Handover, PartnerProfile, Service


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "access",
        "age_min",
        "age_max",
        "takes_digital_handovers",
        "reply_days",
        "area",
        "active",
    )
    list_filter = ("kind", "access", "takes_digital_handovers", "active", "area")
    list_editable = ("active",)
    search_fields = ("name", "slug", "offers", "youth_description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(PartnerProfile)
class PartnerProfileAdmin(admin.ModelAdmin):
    list_display = ("display_name", "service", "user")
    list_filter = ("service",)
    search_fields = ("display_name", "user__username")
    autocomplete_fields = ("service",)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Handover)
class HandoverAdmin(ReadOnlyAdmin):
    list_display = ("id", "service", "state", "reach", "created_by", "created_at", "sent_at")
    list_filter = ("state", "reach", "service")
    date_hierarchy = "created_at"
    # Metadata only: no summary, contact details, reasons or code hash.
    fields = (
        "id",
        "service",
        "state",
        "reach",
        "named_person",
        "created_by",
        "conversation",
        "created_at",
        "proposed_at",
        "sent_at",
        "reply_expected_by",
        "overdue_flagged_at",
        "answered_at",
        "answered_by",
        "first_meeting_at",
        "alternative_service",
        "met_at",
        "withdrawn_at",
        "expired_at",
        "closed_at",
    )


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ("id", "service", "answer", "age_band", "given_at", "expires_at", "withdrawn_at")
    list_filter = ("answer", "age_band", "service")
    fields = (
        "id",
        "handover",
        "service",
        "named_person",
        "scope",
        "exceptions",
        "text_version",
        "age_band",
        "answer",
        "given_at",
        "expires_at",
        "withdrawn_at",
    )


@admin.register(Consultation)
class ConsultationAdmin(ReadOnlyAdmin):
    list_display = ("id", "service", "asked_by", "created_at", "answered_at")
    list_filter = ("service",)
    fields = ("id", "service", "asked_by", "created_at", "answered_by", "answered_at")
