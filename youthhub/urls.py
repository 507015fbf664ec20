from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/youth/", include("chat.urls")),
    path("api/queue/", include("dropin.urls")),
    path("admin/", admin.site.urls),
    path("supervisor/", include("youthhub.stats.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switcher
    path("", include("frontend.urls")),
]
