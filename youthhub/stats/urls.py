from django.urls import path

from . import views

urlpatterns = [
    path("stats/", views.stats_page, name="stats"),
    path("stats.csv", views.stats_csv, name="stats-csv"),
    path("stats/chart/<slug:name>.svg", views.stats_chart, name="stats-chart"),
    path("stats/now", views.stats_now, name="stats-now"),
]
