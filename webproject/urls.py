from __future__ import annotations

from django.contrib import admin
from django.urls import path

from webproject import views

urlpatterns = [
    path("", views.demo, name="demo"),
    path("jobs/add/", views.start_add, name="start-add"),
    path("jobs/report/", views.start_report, name="start-report"),
    path("jobs/fail/", views.start_fail, name="start-fail"),
    path("jobs/<str:result_id>/", views.job_status, name="job-status"),
    path("admin/", admin.site.urls),
]
