from django.urls import path

from . import views

urlpatterns = [
    path("overview", views.overview, name="queue-overview"),
    path("dropin/<slug:slug>/ticket", views.kiosk_ticket, name="kiosk-ticket"),
    path("dropin/<slug:slug>/qr.svg", views.site_qr, name="dropin-qr"),
]
