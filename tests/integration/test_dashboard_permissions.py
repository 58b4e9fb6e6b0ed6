"""The dashboard follows Django's permissions, as the admin does: staff see it
with jobs.view_dashboard, cancel and retry with jobs.manage_jobs, see schedules
with jobs.view_schedule and run them now with jobs.change_schedule (what the
Schedule admin asks to edit one). Superusers have them all."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.tasks import task_backends

from jobs.models import Schedule
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/jobs/dashboard/"


@pytest.fixture
def staff(client, django_user_model):
    """Log in a staff user; call with permission codenames (of app `jobs`) to give."""
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    client.force_login(user)

    def grant(*codenames: str):
        found = Permission.objects.filter(
            content_type__app_label="jobs", codename__in=codenames
        )
        assert found.count() == len(codenames)
        user.user_permissions.add(*found)
        return client

    return grant


def status_of(job_id: str) -> str:
    return task_backends["default"].get_result(job_id).status


def a_schedule() -> Schedule:
    with transaction.atomic():
        return Schedule.objects.create(
            name="nightly", task="tests.tasks.add", args=[1, 2], cron="30 3 * * *"
        )


def test_staff_without_permissions_see_nothing_and_change_nothing(staff):
    client = staff()
    queued = tasks.record.using(run_after=timedelta(hours=1)).enqueue("kept")
    failed = tasks.boom.enqueue()
    schedule = a_schedule()
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}job/{queued.id}/").status_code == 403  # its arguments
    assert client.get(f"{URL}metrics/").status_code == 403
    assert client.post(f"{URL}job/{queued.id}/cancel/").status_code == 403
    assert client.post(f"{URL}job/{failed.id}/retry/").status_code == 403
    ran = client.post(f"{URL}schedules/run/", {"key": f"db:{schedule.pk}"})
    assert ran.status_code == 403
    assert status_of(queued.id) == "READY"
    assert task_backends["default"].results.get(failed.id)["status"] == "READY"
    assert 'href="/admin/jobs/dashboard/"' not in client.get("/admin/").content.decode()


def test_view_dashboard_shows_jobs_but_no_buttons_and_no_schedules(staff):
    client = staff("view_dashboard")
    queued = tasks.record.using(run_after=timedelta(hours=1)).enqueue("secret-arg")
    a_schedule()
    page = client.get(URL)
    assert page.status_code == 200
    assert page.context["schedules"] == [] and not page.context["can_see_schedules"]
    html = page.content.decode()
    assert "jobs-schedules" not in html and "/cancel/" not in html
    detail = client.get(f"{URL}job/{queued.id}/").content.decode()
    assert "secret-arg" in detail and "/cancel/" not in detail
    assert client.post(f"{URL}job/{queued.id}/cancel/").status_code == 403
    assert client.get(f"{URL}metrics/").status_code == 200
    assert 'href="/admin/jobs/dashboard/"' in client.get("/admin/").content.decode()


def test_manage_jobs_cancels_and_retries(staff):
    client = staff("view_dashboard", "manage_jobs")
    queued = tasks.record.using(run_after=timedelta(hours=1)).enqueue("x")
    assert "/cancel/" in client.get(URL).content.decode()
    assert client.post(f"{URL}job/{queued.id}/cancel/").status_code == 302
    assert status_of(queued.id) == "FAILED"


def test_schedules_follow_the_schedule_model_s_permissions(staff):
    client = staff("view_dashboard", "view_schedule")
    schedule = a_schedule()
    page = client.get(URL)
    assert [row.name for row in page.context["schedules"]] == ["nightly"]
    assert "Run now" not in page.content.decode()
    key = {"key": f"db:{schedule.pk}"}
    assert client.post(f"{URL}schedules/run/", key).status_code == 403
    # As the Schedule admin: change_schedule edits it, so it may run it now.
    assert client.get(f"/admin/jobs/schedule/{schedule.pk}/change/").status_code == 200
    client = staff("change_schedule")
    assert "Run now" in client.get(URL).content.decode()
    assert client.post(f"{URL}schedules/run/", key).status_code == 302
