from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

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
]
