"""The Schedule model, its validation, the admin and the system checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError, transaction
from django.tasks import default_task_backend
from django.test import override_settings
from django.utils import timezone

from jobs import SerializationError, crontab
from jobs.models import Schedule
from tests.admin_forms import schedule_form as admin_form

pytestmark = pytest.mark.django_db


def test_creating_one_in_code_is_as_short_as_the_seed():
    with transaction.atomic():
        schedule = Schedule.objects.create(
            name="welcome-37", task="tests.tasks.add", args=[37, 1], cron="30 17 * * *"
        )
    schedule.refresh_from_db()
    assert schedule.kind == "cron"
    assert schedule.enabled and not schedule.one_off
    assert schedule.timezone == "UTC"  # settings.TIME_ZONE
    assert (schedule.overlap, schedule.missed) == ("allow", "skip")
    assert schedule.args == [37, 1] and schedule.kwargs == {}
    schedule.full_clean()


def valid(**changes) -> Schedule:
    fields = {
        "name": "valid",
        "task": "tests.tasks.add",
        "args": [1, 2],
        "cron": "*/5 * * * *",
    }
    return Schedule(**{**fields, **changes})


FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": "61 * * * *"}, "cron", "61 is out of range 0-59"),
        ({"cron": "*/0 * * * *"}, "cron", "A step must be at least 1"),
        ({"cron": "0 0 30 2 *"}, "cron", "can never fire"),
        ({"cron": "0 0 * * 1#2"}, "cron", "Invalid syntax in the day-of-week field"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
        ({"task": "tests.tasks.nope"}, "task", "is not a registered task"),
        ({"task": "os.system"}, "task", "is not a registered task"),
        ({"args": {"x": 1}}, "args", "args must be a JSON list"),
        ({"kwargs": [1]}, "kwargs", "kwargs must be a JSON object"),
        ({"args": [1, 2, 3]}, "args", "cannot be called with these arguments"),
        ({"args": [], "kwargs": {"z": 1}}, "args", "cannot be called"),
        ({"queue_name": "nope"}, "queue_name", "Queue 'nope' is not one of"),
        ({"cron": "", "interval": timedelta(milliseconds=10)}, "interval", "1 second"),
        ({"missed": "grace"}, "grace", "need a grace period"),
        (
            {"start_time": FUTURE, "expires": FUTURE - timedelta(days=1)},
            "expires",
            "Expiry must be after the start",
        ),
        (
            {"cron": "", "clocked_time": datetime(2020, 1, 1, tzinfo=UTC)},
            "clocked_time",
            "in the past",
        ),
        ({"interval": timedelta(seconds=5)}, "__all__", "exactly one of cron"),
        ({"cron": ""}, "__all__", "exactly one of cron"),
    ],
)
def test_full_clean_says_what_is_wrong_on_the_right_field(changes, field, message):
    with pytest.raises(ValidationError) as caught:
        valid(**changes).full_clean()
    errors = caught.value.message_dict
    assert field in errors, errors
    assert any(message in text for text in errors[field]), errors


def test_a_valid_schedule_of_each_kind_passes():
    valid().full_clean()
    valid(name="i", cron="", interval=timedelta(seconds=20)).full_clean()
    valid(name="c", cron="", clocked_time=FUTURE).full_clean()
    valid(
        name="q", queue_name="reports", missed="grace", grace=timedelta(minutes=5)
    ).full_clean()


def test_the_database_refuses_two_kinds_or_none():
    for fields in ({"interval": timedelta(seconds=5)}, {"cron": ""}):
        with pytest.raises(IntegrityError), transaction.atomic():
            valid(**fields).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        valid(cron="", interval=timedelta(milliseconds=1)).save()


def test_queryset_filters():
    now = timezone.now()
    Schedule.objects.create(name="a", task="tests.tasks.add", cron="* * * * *")
    Schedule.objects.create(
        name="b",
        task="tests.tasks.aadd",
        interval=timedelta(seconds=5),
        enabled=False,
    )
    Schedule.objects.create(
        name="c",
        task="tests.tasks.add",
        clocked_time=now + timedelta(days=1),
        expires=now - timedelta(seconds=1),
    )

    def names(queryset):
        return sorted(s.name for s in queryset)

    assert names(Schedule.objects.enabled()) == ["a", "c"]
    assert names(Schedule.objects.disabled()) == ["b"]
    assert names(Schedule.objects.active()) == ["a"]
    assert names(Schedule.objects.expired()) == ["c"]
    assert names(Schedule.objects.crons()) == ["a"]
    assert names(Schedule.objects.intervals()) == ["b"]
    assert names(Schedule.objects.clocked()) == ["c"]
    from tests import tasks

    assert names(Schedule.objects.for_task(tasks.add)) == ["a", "c"]
    assert names(Schedule.objects.for_task("tests.tasks.aadd")) == ["b"]
    assert Schedule.objects.all().disable() == 2
    assert Schedule.objects.enabled().count() == 0
    assert Schedule.objects.filter(name="a").enable() == 1


@override_settings(TIME_ZONE="Europe/Berlin")
def test_next_runs_are_in_the_schedules_zone_whatever_the_server():
    schedule = valid(cron="0 9 * * *", timezone="Asia/Shanghai")
    runs = schedule.next_runs(5, after=datetime(2026, 3, 27, tzinfo=UTC))
    assert [r.isoformat() for r in runs] == [
        f"2026-03-{d:02}T01:00:00+00:00" for d in range(27, 32)
    ]


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        (
            {"cron": crontab(hour=4, minute=30, day_of_week=1)},
            "At 04:30, only on Monday (Europe/Berlin)",
        ),
        ({"cron": "@daily"}, "At 00:00 (Europe/Berlin)"),
        ({"cron": "", "interval": timedelta(seconds=20)}, "Every 20 seconds"),
        ({"cron": "", "interval": timedelta(hours=1, minutes=30)}, "Every 1 hour, 30"),
        (
            {"cron": "", "clocked_time": datetime(2026, 5, 1, 7, tzinfo=UTC)},
            "Once, at 2026-05-01 09:00:00 CEST",
        ),
        ({"cron": "61 * * * *"}, "Invalid: 61 is out of range"),
    ],
)
def test_schedules_describe_themselves(changes, text):
    assert valid(timezone="Europe/Berlin", **changes).describe().startswith(text)


@override_settings(USE_TZ=False, TIME_ZONE="America/New_York")
def test_naive_datetimes_when_use_tz_is_off():
    schedule = valid(
        cron="30 1 * * *",
        timezone="America/New_York",
        start_time=datetime(2026, 10, 31, 12, 0),  # naive: New York wall time
        expires=datetime(2026, 11, 3, 0, 0),
    )
    schedule.full_clean()
    schedule.save()
    schedule.refresh_from_db()
    assert schedule.created_at.tzinfo is None
    past = valid(name="past", cron="", clocked_time=datetime(2020, 1, 1, 9, 0))
    with pytest.raises(ValidationError, match="in the past"):
        past.full_clean()
    valid(name="future", cron="", clocked_time=datetime(2099, 1, 1)).full_clean()
    runs = schedule.next_runs(5, after=datetime(2026, 10, 1))
    # Naive New York time, as Django hands datetimes out with USE_TZ off.
    assert [r.isoformat() for r in runs] == [
        "2026-11-01T01:30:00",  # 01:30-04:00, once, although 01:30 repeats
        "2026-11-02T01:30:00",
    ]
    assert [
        r.isoformat() for r in schedule.next_instants(5, datetime(2026, 10, 1))
    ] == [
        "2026-11-01T05:30:00+00:00",
        "2026-11-02T06:30:00+00:00",
    ]
    assert list(Schedule.objects.active(datetime(2026, 11, 2, 23, 0))) == [schedule]
    assert list(Schedule.objects.expired(datetime(2026, 11, 3, 0, 0))) == [schedule]
    assert Schedule.objects.all().disable() == 1
    assert schedule.describe() == "At 01:30 (America/New_York)"


# Admin


@pytest.fixture
def schedules(db):
    weekly = Schedule.objects.create(
        name="send-report",
        task="tests.tasks.add",
        args=[1, 2],
        cron=crontab(hour=4, minute=30, day_of_week=1),
        timezone="Europe/Berlin",
    )
    every = Schedule.objects.create(
        name="sum-task",
        task="tests.tasks.add",
        args=[5, 6],
        interval=timedelta(seconds=20),
    )
    return weekly, every


def test_admin_list_shows_schedules_in_words_and_their_next_runs(
    admin_client, schedules
):
    weekly, _ = schedules
    page = admin_client.get("/admin/jobs/schedule/").content.decode()
    assert "At 04:30, only on Monday (Europe/Berlin)" in page
    assert "Every 20 seconds" in page
    first = weekly.next_runs(1)[0].astimezone(weekly.timing().zone)
    assert f"{first:%Y-%m-%d} 04:30:00 CE" in page  # CET or CEST
    assert "Run selected schedules now" in page


def test_admin_add_form_picks_registered_tasks_and_shows_errors(admin_client):
    page = admin_client.get("/admin/jobs/schedule/add/").content.decode()
    assert '<option value="tests.tasks.counted">' in page
    assert '<option value="Europe/Berlin">' in page
    answer = admin_client.post(
        "/admin/jobs/schedule/add/",
        admin_form(cron="0 0 30 2 *", interval="", timezone="Mars/Olympus"),
    )
    assert answer.status_code == 200  # the form again, with its errors
    text = answer.content.decode()
    assert "can never fire" in text
    assert "Unknown time zone" in text
    assert not Schedule.objects.exists()
    answer = admin_client.post(
        "/admin/jobs/schedule/add/", admin_form(interval="", cron="", args="[1]")
    )
    text = re.sub(r"\s+", " ", answer.content.decode())
    assert "Set exactly one of cron, interval or clocked time." in text
    answer = admin_client.post("/admin/jobs/schedule/add/", admin_form())
    assert answer.status_code == 302
    assert Schedule.objects.get().interval == timedelta(seconds=20)


@pytest.mark.parametrize("field", ["args", "kwargs"])
def test_admin_says_only_invalid_json_for_unreadable_arguments(admin_client, field):
    answer = admin_client.post(
        "/admin/jobs/schedule/add/", admin_form(**{field: '["admin", '})
    )
    assert answer.status_code == 200
    form = answer.context["adminform"].form
    # Not also "cannot be called ... missing 'key'": the field's default is
    # not what was typed.
    assert form.errors.as_data().keys() == {field}
    assert [e.message for e in form.errors.as_data()[field]] == ["Enter a valid JSON."]
    assert not Schedule.objects.exists()


def test_arguments_that_are_not_json_are_refused_with_our_message():
    with pytest.raises(SerializationError, match=r"args\[0\] is a datetime.datetime"):
        Schedule.objects.create(
            name="d",
            task="tests.tasks.add",
            args=[datetime(2026, 1, 1), 1],
            cron="@daily",
        )
    with pytest.raises(SerializationError, match=r"kwargs\['y'\] is a builtins.set"):
        Schedule(
            name="s", task="tests.tasks.add", kwargs={"y": {1}}, cron="@daily"
        ).save()
    assert not Schedule.objects.exists()


def test_admin_actions_run_now_enable_and_disable(admin_client, schedules):
    weekly, every = schedules
    pks = [str(weekly.pk), str(every.pk)]
    answer = admin_client.post(
        "/admin/jobs/schedule/",
        {"action": "run_now", "_selected_action": pks},
        follow=True,
    )
    assert "Queued 2 job(s)." in answer.content.decode()
    weekly.refresh_from_db()
    assert weekly.run_count == 1
    result = default_task_backend.get_result(weekly.last_result_id)
    assert result.status == "READY"
    assert result.meta == {"schedule": "send-report"}
    page = admin_client.get("/admin/jobs/schedule/").content.decode()
    assert "READY" in page  # the last result's status

    admin_client.post(
        "/admin/jobs/schedule/", {"action": "disable", "_selected_action": pks}
    )
    assert Schedule.objects.enabled().count() == 0
    admin_client.post(
        "/admin/jobs/schedule/", {"action": "enable", "_selected_action": pks[:1]}
    )
    assert list(Schedule.objects.enabled()) == [weekly]


# System checks and the demo command

SEED = {
    "sum-task": {
        "task": "tests.tasks.add",
        "schedule": timedelta(seconds=20),
        "args": (5, 6),
    },
    "send-report": {
        "task": "tests.tasks.counted",
        "schedule": crontab(hour=4, minute=30, day_of_week=1),
        "args": ("report",),
    },
}


@override_settings(JOBS_SCHEDULES=SEED)
def test_the_seeds_settings_schedules_pass_the_checks():
    call_command("check", fail_level="WARNING")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"task": "tests.tasks.add", "schedule": "61 * * * *", "args": (1, 2)}, "61"),
        ({"task": "nope.add", "schedule": 20}, "not a registered task"),
        ({"task": "tests.tasks.add", "schedule": 20, "args": (1,)}, "cannot be called"),
        ({"task": "tests.tasks.add", "schedule": "nope"}, "has 1 fields"),
        ({"task": "tests.tasks.add", "schedule": [1]}, "schedule must be"),
        ({"task": "tests.tasks.add"}, "at least 'task' and 'schedule'"),
        ({"task": "tests.tasks.add", "schedule": 1, "sched": 1}, "Unknown keys"),
        (
            {"task": "tests.tasks.add", "schedule": 5, "args": (1, 2), "timezone": "X"},
            "Unknown time zone",
        ),
        ({"task": "tests.tasks.add", "schedule": 0.1, "args": (1, 2)}, "1 second"),
        ({"task": "tests.tasks.add", "schedule": 5, "args": 5}, "not iterable"),
        (
            {"task": "tests.tasks.add", "schedule": 5, "args": (1, 2), "missed": "x"},
            "missed",
        ),
    ],
)
def test_bad_settings_schedules_are_check_errors(item, message):
    with override_settings(JOBS_SCHEDULES={"bad": item}):
        with pytest.raises(SystemCheckError) as caught:
            call_command("check")
    assert "jobs.E011" in str(caught.value)
    assert message in str(caught.value)


def test_a_non_dict_setting_is_a_check_error():
    with override_settings(JOBS_SCHEDULES=["x"], JOBS_SCHEDULES_RECONCILE=0):
        with pytest.raises(SystemCheckError) as caught:
            call_command("check")
    assert "jobs.E010" in str(caught.value)
    assert "jobs.E012" in str(caught.value)


def test_demo_command_creates_the_seeds_schedules_once():
    call_command("jobs_demo_schedules")
    call_command("jobs_demo_schedules")
    rows = {s.name: s for s in Schedule.objects.all()}
    assert sorted(rows) == ["send-report", "sum-task"]
    assert rows["sum-task"].args == [5, 6]
    assert rows["sum-task"].interval == timedelta(seconds=20)
    assert rows["send-report"].describe().startswith("At 04:30, only on Monday")


@override_settings(USE_TZ=False, TIME_ZONE="Europe/Berlin")
def test_admin_list_without_use_tz(admin_client):
    schedule = Schedule.objects.create(
        name="naive", task="tests.tasks.add", args=[1, 2], cron="0 9 * * *"
    )
    # As a worker writes it: naive Berlin time.
    Schedule.objects.filter(pk=schedule.pk).update(
        last_run_at=datetime(2026, 7, 1, 9, 0), run_count=1
    )
    page = admin_client.get("/admin/jobs/schedule/").content.decode()
    assert "2026-07-01 09:00:00 CEST" in page
    assert "At 09:00 (Europe/Berlin)" in page


def test_admin_list_survives_a_bad_row(admin_client, schedules):
    weekly, _ = schedules
    Schedule.objects.filter(pk=weekly.pk).update(  # no validation on update()
        cron="61 * * * *", timezone="Mars/Olympus", last_run_at=timezone.now()
    )
    answer = admin_client.get("/admin/jobs/schedule/")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "Invalid: Unknown time zone &#x27;Mars/Olympus&#x27;" in page
    assert "Every 20 seconds" in page  # the other row is unaffected
