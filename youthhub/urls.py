from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/youth/", include("chat.urls")),
    path("api/queue/", include("dropin.urls")),
    path("admin/", admin.site.urls),
    path("", include("frontend.urls")),
]
