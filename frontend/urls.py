from django.contrib.auth import views as auth_views
from django.urls import path

from . import partner_views, views

urlpatterns = [
    path("", views.youth, name="youth"),
    path("dropin/<slug:slug>/", views.dropin, name="dropin"),
    path("dropin/<slug:slug>/kiosk/", views.kiosk, name="kiosk"),
    # The PWA: the worker must be served from the root to control the youth page at "/".
    path("sw.js", views.service_worker, name="service-worker"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("staff/", views.staff, name="staff"),
    path(
        "staff/login/",
        auth_views.LoginView.as_view(template_name="frontend/login.html"),
        name="staff-login",
    ),
    path("staff/logout/", auth_views.LogoutView.as_view(), name="staff-logout"),
    # Partners (someone at a receiving service): inbox, handovers, warm handover chat.
    path("partner/", partner_views.inbox, name="partner-inbox"),
    path("partner/code", partner_views.code_lookup, name="partner-code"),
    path(
        "partner/consultations/<uuid:consultation_id>/answer",
        partner_views.consultation_answer,
        name="partner-consultation-answer",
    ),
    path("partner/h/<uuid:handover_id>/", partner_views.handover, name="partner-handover"),
    path("partner/h/<uuid:handover_id>/accept", partner_views.accept, name="partner-accept"),
    path("partner/h/<uuid:handover_id>/decline", partner_views.decline, name="partner-decline"),
    path("partner/h/<uuid:handover_id>/met", partner_views.met, name="partner-met"),
    path("partner/chat/<uuid:conversation_id>/", partner_views.chat, name="partner-chat"),
]
