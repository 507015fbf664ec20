from django.urls import path

from . import views

urlpatterns = [
    path("session", views.session_create, name="youth-session"),
    path("return-code", views.return_code_create, name="youth-return-code"),
    path("resume", views.session_resume, name="youth-resume"),
]
