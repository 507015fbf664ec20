from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from youthhub.metrics import metrics_view

urlpatterns = [
    path("api/youth/", include("chat.urls")),
    path("api/queue/", include("dropin.urls")),
    # The admin logs in through the staff login too (password + two-factor code).
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="staff-login", query_string=True),
        name="admin-login-redirect",
    ),
    path("admin/", admin.site.urls),
    path("supervisor/", include("youthhub.stats.urls")),
    path("metrics", metrics_view, name="metrics"),  # operators only (youthhub/metrics.py)
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switcher
    path("", include("frontend.urls")),
]
