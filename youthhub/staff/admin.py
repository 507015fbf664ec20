from django.contrib import admin

from .models import CannedReply, StaffProfile


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("display_name", "role", "is_supervisor", "capacity", "status")
    list_filter = ("role", "is_supervisor", "status")
    search_fields = ("display_name", "user__username")
    filter_horizontal = ("sites",)
    readonly_fields = ("seen_at",)


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ("title", "language", "role", "order", "active")
    list_filter = ("language", "role", "active")
    list_editable = ("order", "active")
    search_fields = ("title", "text")
