from __future__ import annotations

from django.contrib import admin
from django.urls import path

from jobs import dashboard
from jobs.dashboard import metrics_view
from webproject import views

urlpatterns = [
    path("", views.demo, name="demo"),
    path("jobs/add/", views.start_add, name="start-add"),
    path("jobs/report/", views.start_report, name="start-report"),
    path("jobs/fail/", views.start_fail, name="start-fail"),
    path("jobs/events/", views.job_events, name="job-events"),
    path("jobs/<str:result_id>/", views.job_status, name="job-status"),
    path("jobs/<str:result_id>/cancel/", views.cancel_job, name="job-cancel"),
    path("metrics", metrics_view, name="metrics"),
    # The jobs dashboard (and its "Dashboard" entry on the admin index).
    path("admin/jobs/dashboard/", dashboard.urls(admin.site)),
    path("admin/", admin.site.urls),
]
