from django.urls import path

from youthhub.accounts import views as accounts_views

from . import partner_views, views

urlpatterns = [
    path("", views.youth, name="youth"),
    path("dropin/<slug:slug>/", views.dropin, name="dropin"),
    path("dropin/<slug:slug>/kiosk/", views.kiosk, name="kiosk"),
    # The PWA: the worker must be served from the root to control the youth page at "/".
    path("sw.js", views.service_worker, name="service-worker"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("staff/", views.staff, name="staff"),
    # Logging in: password, then the code from an authenticator app (or enrolling one).
    path("staff/login/", accounts_views.login_view, name="staff-login"),
    path("staff/login/code/", accounts_views.code, name="staff-login-code"),
    path("staff/login/setup/", accounts_views.setup, name="staff-login-setup"),
    path("staff/logout/", accounts_views.logout_view, name="staff-logout"),
    # Partners (someone at a receiving service): inbox, handovers, warm handover chat.
    path("partner/", partner_views.inbox, name="partner-inbox"),
    path("partner/code", partner_views.code_lookup, name="partner-code"),
    path(
        "partner/consultations/<uuid:consultation_id>/answer",
        partner_views.consultation_answer,
        name="partner-consultation-answer",
    ),
    path("partner/h/<uuid:handover_id>/", partner_views.handover, name="partner-handover"),
    path(
        "partner/h/<uuid:handover_id>/status",
        partner_views.handover_status,
        name="partner-handover-status",
    ),
    path("partner/h/<uuid:handover_id>/accept", partner_views.accept, name="partner-accept"),
    path("partner/h/<uuid:handover_id>/decline", partner_views.decline, name="partner-decline"),
    path("partner/h/<uuid:handover_id>/met", partner_views.met, name="partner-met"),
    path("partner/chat/<uuid:conversation_id>/", partner_views.chat, name="partner-chat"),
]
