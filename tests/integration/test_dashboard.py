"""The admin dashboard: who may see it, what it shows, what its buttons do."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.tasks import task_backends
from django.test import Client, override_settings

from jobs import chain, chord
from jobs.dashboard import monitor
from jobs.models import Schedule
from jobs.redis import connections
from jobs.testing import drain
from tests import tasks
from tests.integration.test_enqueue import _dead_url, _tasks_at
from tests.servers import settings_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/jobs/dashboard/"


def backend():
    return task_backends["default"]


def status_of(job_id: str) -> str:
    return backend().get_result(job_id).status


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_only_active_staff_see_it(client, django_user_model):
    answer = client.get(URL)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/admin/login/?next=/admin/jobs/dashboard/")
    user = django_user_model.objects.create_user("visitor", password="pw")
    client.force_login(user)
    assert client.get(URL).status_code == 302
    assert client.get("/admin/jobs/dashboard/metrics/").status_code == 403
    user.is_staff = True
    user.save()
    assert client.get(URL).status_code == 403  # staff, without jobs.view_dashboard


def test_the_admin_index_and_sidebar_link_to_it(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert f'href="{URL}"' in page
    assert "Dashboard" in page
    sidebar = admin_client.get("/admin/auth/user/").content.decode()
    assert f'href="{URL}"' in sidebar


def test_queues_split_into_due_running_and_deferred():
    tasks.add.enqueue(1, 1)
    tasks.add.using(run_after=timedelta(hours=1)).enqueue(2, 2)
    tasks.record.using(queue_name="low").enqueue("x")
    stats = {q.name: q for q in monitor.queue_stats(backend())}
    assert list(stats) == ["default", "reports", "high", "low"]
    assert (stats["default"].length, stats["default"].due) == (2, 1)
    assert (stats["default"].deferred, stats["default"].running) == (1, 0)
    assert stats["low"].due == 1
    assert stats["reports"].length == 0


def test_jobs_of_every_priority_are_counted_and_shown(admin_client):
    plain = tasks.add.enqueue(1, 1)
    urgent = tasks.add.using(priority=50).enqueue(2, 2)
    later = tasks.add.using(priority=-5, run_after=timedelta(hours=1)).enqueue(3, 3)
    stats = {q.name: q for q in monitor.queue_stats(backend())}
    default = stats["default"]
    assert (default.length, default.due, default.deferred) == (3, 2, 1)
    shown = {row["id"] for row in admin_client.get(URL).context["queued"]}
    assert shown == {plain.id, urgent.id, later.id}


def test_it_shows_queued_jobs_and_finished_ones_with_their_errors(admin_client):
    ok = tasks.add.enqueue(2, 3)
    bad = tasks.boom.enqueue("it broke")
    drain()
    waiting = tasks.add.using(run_after=timedelta(hours=1)).enqueue(5, 5)
    answer = admin_client.get(URL)
    assert answer.status_code == 200
    page = answer.content.decode()
    recent = {row["id"]: row for row in answer.context["recent"]}
    assert recent[ok.id]["status"] == "SUCCESSFUL"
    assert recent[bad.id]["status"] == "FAILED"
    assert recent[ok.id]["duration_text"].endswith(("ms", "s"))
    assert "ValueError: it broke" in page
    assert [row["id"] for row in answer.context["queued"]] == [waiting.id]
    default = next(q for q in answer.context["queues"] if q.name == "default")
    assert default.deferred == 1
    assert 'extends "admin/base_site.html"' not in page  # rendered, not raw
    assert "Django administration" in page  # the admin's own header


def test_the_fragment_is_the_sections_alone(admin_client):
    page = admin_client.get(URL + "?fragment=1").content.decode()
    assert 'id="jobs-queues"' in page
    assert "<html" not in page


def test_recent_results_page_back_and_filter_by_status():
    ids = [tasks.add.enqueue(i, i).id for i in range(5)]
    failed = [tasks.boom.enqueue().id for _ in range(2)]
    drain()
    first = monitor.recent(backend(), window=3600, limit=4)
    assert len(first.rows) == 4 and first.next_offset == 4
    second = monitor.recent(backend(), window=3600, limit=4, offset=4)
    assert second.next_offset is None
    seen = [r["id"] for r, _ in first.rows + second.rows]
    assert sorted(seen) == sorted(ids + failed)
    only_failed = monitor.recent(backend(), window=3600, status="FAILED")
    assert sorted(r["id"] for r, _ in only_failed.rows) == sorted(failed)


def test_the_history_window_is_a_setting(admin_client, r):
    old = tasks.add.enqueue(1, 1)
    new = tasks.add.enqueue(2, 2)
    drain()
    two_hours_ago = monitor.now_ms() - 2 * 3600 * 1000
    r.zadd("jobs:recent", {old.id: two_hours_ago})
    with override_settings(JOBS_DASHBOARD_HISTORY=3600):
        answer = admin_client.get(URL)
    assert [row["id"] for row in answer.context["recent"]] == [new.id]
    assert "last 1.0 h" in answer.content.decode()
    assert len(admin_client.get(URL).context["recent"]) == 2  # default: a day


def test_history_survives_a_redis_restart(own_redis, admin_client):
    server = own_redis("--appendonly", "yes", "--appendfsync", "always")
    with override_settings(**settings_for(server.url)):
        done = tasks.boom.enqueue("before the restart")
        drain()
        server.stop()
        connections.close_all()
        server.start()
        answer = admin_client.get(URL)
    assert [row["id"] for row in answer.context["recent"]] == [done.id]
    assert "before the restart" in answer.content.decode()


def test_cancel_a_queued_job_from_the_dashboard(admin_client):
    job = tasks.record.using(run_after=timedelta(hours=1)).enqueue("never")
    answer = admin_client.post(f"{URL}job/{job.id}/cancel/", {"next": URL}, follow=True)
    assert answer.redirect_chain[-1][0] == URL
    assert f"Cancelled job {job.id} before it ran." in messages_of(answer)
    result = backend().get_result(job.id)
    assert result.status == "FAILED"
    assert result.errors[-1].exception_class_path == "jobs.exceptions.JobCancelled"
    again = admin_client.post(f"{URL}job/{job.id}/cancel/", follow=True)
    assert "had already finished (FAILED)" in messages_of(again)[0]


def test_actions_are_posts_with_csrf(django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "b@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    job = tasks.record.using(run_after=timedelta(hours=1)).enqueue("kept")
    assert client.get(f"{URL}job/{job.id}/cancel/").status_code == 405
    assert client.post(f"{URL}job/{job.id}/cancel/").status_code == 403
    assert status_of(job.id) == "READY"
    page = client.get(URL).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    answer = client.post(f"{URL}job/{job.id}/cancel/", {"csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert status_of(job.id) == "FAILED"


def test_an_offsite_next_is_ignored(admin_client):
    job = tasks.record.using(run_after=timedelta(hours=1)).enqueue("x")
    answer = admin_client.post(
        f"{URL}job/{job.id}/cancel/", {"next": "https://evil.example/"}
    )
    assert answer["Location"] == URL


def test_retry_a_failed_job_as_a_new_one(admin_client):
    failed = tasks.boom.using(queue_name="low").enqueue("again")
    drain()
    answer = admin_client.post(f"{URL}job/{failed.id}/retry/", follow=True)
    message = messages_of(answer)[0]
    new_id = re.search(r"Queued job (\S+) to retry", message).group(1)
    retried = backend().get_result(new_id)
    assert retried.status == "READY"
    assert retried.args == ["again"]
    assert retried.task.queue_name == "low"
    assert retried.meta == {"retry_of": failed.id}
    drain()
    assert status_of(new_id) == "FAILED"
    ok = tasks.add.enqueue(1, 1)
    drain()
    refused = admin_client.post(f"{URL}job/{ok.id}/retry/", follow=True)
    assert "Only failed jobs can be retried" in messages_of(refused)[0]
    unknown = admin_client.post(f"{URL}job/{'0' * 32}/retry/", follow=True)
    assert "does not exist" in messages_of(unknown)[0]


def test_the_job_page_has_the_whole_story(admin_client):
    failed = tasks.boom.enqueue("with a traceback")
    drain()
    page = admin_client.get(f"{URL}job/{failed.id}/").content.decode()
    assert "Traceback (most recent call last)" in page
    assert "builtins.ValueError" in page
    assert "Retry as a new job" in page
    assert admin_client.get(f"{URL}job/{'0' * 32}/").status_code == 404
    found = admin_client.get(URL, {"job": failed.id})
    assert found["Location"] == f"{URL}job/{failed.id}/"
    odd = admin_client.get(URL, {"job": "a/b c"})
    assert odd.status_code == 200
    assert "'a/b c' is not a job id." in messages_of(odd)


def test_running_jobs_and_live_workers(admin_client, worker_process):
    worker_process()
    job = tasks.asleeper.enqueue(30)
    plain = tasks.sleeper.enqueue(1.5)

    def running():
        return {row["id"]: row for row in admin_client.get(URL).context["running"]}

    wait_until(lambda: {job.id, plain.id} <= running().keys(), what="both running")
    context = admin_client.get(URL).context
    rows = {row["id"]: row for row in context["running"]}
    assert rows[job.id]["cancellable"] is True
    assert rows[plain.id]["cancellable"] is False  # a thread cannot be stopped
    assert rows[job.id]["worker"] == context["workers"][0].id
    assert len(context["workers"]) == 1
    assert context["workers"][0].running == 2  # counted from the leases, live
    assert context["workers"][0].heartbeat_age < 30
    answer = admin_client.post(f"{URL}job/{job.id}/cancel/", follow=True)
    assert f"Asked the worker to cancel running job {job.id}." in messages_of(answer)
    wait_until(lambda: status_of(job.id) == "FAILED", what="cancelled")
    assert backend().get_result(job.id).errors[-1].message == (
        "The job was cancelled while it ran."
    )
    answer = admin_client.post(f"{URL}job/{plain.id}/cancel/", follow=True)
    assert "cannot be interrupted" in " ".join(messages_of(answer))
    wait_until(lambda: status_of(plain.id) == "SUCCESSFUL", what="plain one finished")


def test_a_redis_outage_is_a_message_not_an_error_page(admin_client):
    with override_settings(TASKS=_tasks_at(_dead_url())):
        answer = admin_client.get(URL)
    assert answer.status_code == 200
    assert "Redis cannot be reached" in answer.content.decode()


def test_schedules_show_their_next_run_and_run_now(admin_client):
    from django.db import transaction

    from jobs.models import Schedule

    with transaction.atomic():
        nightly = Schedule.objects.create(
            name="nightly", task="tests.tasks.add", args=[20, 22], cron="30 3 * * *"
        )
        Schedule.objects.create(
            name="off",
            task="tests.tasks.add",
            args=[1, 1],
            cron="* * * * *",
            enabled=False,
        )
    answer = admin_client.get(URL)
    rows = {row.name: row for row in answer.context["schedules"]}
    assert list(rows) == ["nightly"]  # enabled ones only
    assert rows["nightly"].next_run == nightly.next_runs(1)[0]
    assert rows["nightly"].next_run.strftime("%H:%M") == "03:30"
    assert rows["nightly"].admin_url == f"/admin/jobs/schedule/{nightly.pk}/change/"
    ran = admin_client.post(
        f"{URL}schedules/run/", {"key": f"db:{nightly.pk}"}, follow=True
    )
    job_id = re.search(r"Queued job (\S+) for schedule 'nightly'", messages_of(ran)[0])
    result = backend().get_result(job_id.group(1))
    assert result.args == [20, 22]
    assert result.meta == {"schedule": "nightly"}
    drain()
    later = {row.name: row for row in admin_client.get(URL).context["schedules"]}
    assert later["nightly"].last_job == result.id
    assert later["nightly"].last_status == "SUCCESSFUL"
    gone = admin_client.post(f"{URL}schedules/run/", {"key": "db:999999"}, follow=True)
    assert "No schedule 'db:999999'" in messages_of(gone)[0]


@override_settings(
    JOBS_SCHEDULES={
        "every-minute": {
            "task": "tests.tasks.record",
            "schedule": 60,
            "args": ["tick"],
        },
        "broken": {"task": "tests.tasks.nope", "schedule": 60},
    }
)
def test_settings_schedules_are_listed_and_can_run_now(admin_client):
    answer = admin_client.get(URL)
    rows = {row.name: row for row in answer.context["schedules"]}
    assert rows["every-minute"].source == "settings"
    assert rows["every-minute"].next_run.second == 0  # intervals count from the epoch
    assert "JOBS_SCHEDULES['broken']" in answer.context["schedules_note"]
    ran = admin_client.post(
        f"{URL}schedules/run/", {"key": "settings:every-minute"}, follow=True
    )
    job_id = re.search(r"Queued job (\S+) for", messages_of(ran)[0]).group(1)
    assert backend().get_result(job_id).args == ["tick"]
    drain()
    assert tasks.seen == ["tick"]


def test_workflows_show_their_stage_and_the_step_that_failed(admin_client):
    done = chord([tasks.add.bind(1, 1)], tasks.double.bind()).enqueue()
    failed = chain(
        tasks.add.bind(1, 2), tasks.boom.bind(), tasks.double.bind()
    ).enqueue()
    drain()
    page = admin_client.get(URL).content.decode()
    listed = page[page.index('id="jobs-workflows"') :]
    for flow in (done, failed):
        assert f'data-workflow="{flow.id}"' in listed
    row = listed[listed.index(f'data-workflow="{failed.id}"') :].split("</tr>")[0]
    assert "FAILED" in row and "2 of 3" in row
    assert "tests.tasks.boom" in row and "ValueError: 3" in row
    detail = admin_client.get(f"{URL}workflow/{failed.id}/").content.decode()
    add_id, boom_id, never_id = failed.step_ids
    assert re.search(rf'data-job="{boom_id}" class="failed-step"', detail)
    assert "not queued" in detail.split(f'data-job="{never_id}"')[1].split("</tr>")[0]
    assert "SUCCESSFUL" in detail.split(f'data-job="{add_id}"')[1].split("</tr>")[0]
    job_page = admin_client.get(f"{URL}job/{boom_id}/").content.decode()
    assert f'href="{URL}workflow/{failed.id}/"' in job_page
    assert "stage 2, step 1" in job_page
    assert admin_client.get(f"{URL}workflow/nope/").status_code == 404


def test_retrying_a_failed_step_queues_a_job_outside_the_workflow(admin_client):
    failed = chain(tasks.boom.bind("once")).enqueue()
    drain()
    answer = admin_client.post(f"{URL}job/{failed.step_ids[0]}/retry/", follow=True)
    assert "its workflow does not resume" in messages_of(answer)[0]
    retry_id = re.search(r"Queued job (\w+)", messages_of(answer)[0]).group(1)
    assert "workflow" not in backend().get_result(retry_id).meta
    drain()
    failed.refresh()
    assert failed.status == "FAILED"


@override_settings(USE_TZ=False, TIME_ZONE="Asia/Shanghai")
def test_times_are_time_zone_time_as_in_the_admin_with_use_tz_off(admin_client):
    # The seed's settings: a row's times read as the Schedule admin shows them,
    # not in UTC without a word (before: 2030-01-01 19:04:05).
    with transaction.atomic():
        Schedule.objects.create(
            name="once",
            task="tests.tasks.add",
            args=[1, 2],
            clocked_time=datetime(2030, 1, 2, 3, 4, 5),
        )
    result = tasks.add.enqueue(1, 2)
    page = admin_client.get(URL).content.decode()
    assert "<td>2030-01-02 03:04:05</td>" in page  # its next run
    job_page = admin_client.get(f"{URL}job/{result.id}/").content.decode()
    enqueued = result.enqueued_at.strftime("%Y-%m-%d %H:%M:%S")  # naive Shanghai
    assert f"<td>{enqueued}." in job_page  # with microseconds
    assert f"<td>{enqueued}</td>" in page  # the queued job's row
