"""Datetimes handed to user code follow Django's convention in both modes.

With USE_TZ = True they are aware (UTC); with USE_TZ = False, naive local time
in TIME_ZONE (the seed's `Asia/Shanghai`), so that they subtract from each
other, from `timezone.now()` and from model fields without the seed's
"can't subtract offset-naive and offset-aware datetimes".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.tasks.signals import task_finished, task_started
from django.test import override_settings
from django.utils import timezone

from jobs.schedules.models import Schedule
from jobs.schedules.sources import read_changes, write_states
from jobs.testing import drain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

ZONE = "Asia/Shanghai"
TIMES = ("enqueued_at", "started_at", "last_attempted_at", "finished_at")


@pytest.fixture(params=[True, False], ids=["use_tz", "naive"])
def use_tz(request):
    with override_settings(USE_TZ=request.param, TIME_ZONE=ZONE):
        yield request.param


def assert_convention(value: datetime | None, use_tz: bool) -> None:
    assert value is not None
    if use_tz:
        assert value.utcoffset() == timedelta(0)
    else:
        assert value.tzinfo is None
    # Within the test's minute of now, which compares only in the right mode.
    assert abs(timezone.now() - value) < timedelta(minutes=1)


def assert_result_times(result: Any, use_tz: bool, *names: str) -> None:
    for name in names:
        assert_convention(getattr(result, name), use_tz)


def test_an_enqueued_result_and_a_finished_one(use_tz):
    result = tasks.add.enqueue(2, 3)
    assert_result_times(result, use_tz, "enqueued_at")
    drain()
    result.refresh()
    assert_result_times(result, use_tz, *TIMES)
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.finished_at - result.enqueued_at >= timedelta(0)  # the seed's line
    fetched = tasks.add.get_result(result.id)
    assert_result_times(fetched, use_tz, *TIMES)


def test_a_failed_result(use_tz):
    result = tasks.boom.enqueue("kaput")
    drain()
    with pytest.raises(ValueError, match="kaput"):
        result.get(timeout=5)
    assert_result_times(result, use_tz, *TIMES)


def test_a_cancelled_result(use_tz):
    result = tasks.add.enqueue(1, 1)
    tasks.add.get_backend().cancel(result.id)
    result.refresh()
    assert_result_times(result, use_tz, "enqueued_at", "finished_at")


def test_results_the_worker_hands_to_signal_receivers(use_tz):
    seen: list[Any] = []

    def receiver(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append(task_result)

    task_started.connect(receiver)
    task_finished.connect(receiver)
    try:
        tasks.add.enqueue(2, 3)
        drain()
    finally:
        task_started.disconnect(receiver)
        task_finished.disconnect(receiver)
    started, finished = seen
    assert_result_times(started, use_tz, "enqueued_at", "started_at")
    assert_result_times(finished, use_tz, *TIMES)


def test_run_after_in_local_time(use_tz):
    later = timezone.now() + timedelta(hours=1)
    result = tasks.add.using(run_after=later).enqueue(1, 2)
    fetched = tasks.add.get_result(result.id)
    assert fetched.task.run_after == later
    assert_result_times(fetched, use_tz, "enqueued_at")


def test_a_schedules_next_runs(use_tz):
    schedule = Schedule.objects.create(
        name="minutely", task="tests.tasks.add", args=[1, 2], cron="* * * * *"
    )
    [run] = schedule.next_runs(1)
    assert_convention(run, use_tz)
    assert timedelta(0) < run - timezone.now() <= timedelta(minutes=1)
    assert run - schedule.created_at > timedelta(0)


def test_a_last_run_in_the_future_is_run_from_now_with_a_warning(caplog):
    """Switching USE_TZ on an existing SQLite database (the seed's workaround)
    moves every naive Asia/Shanghai time 8 h into the future."""
    now = datetime.now(UTC)
    with override_settings(USE_TZ=False, TIME_ZONE=ZONE):
        schedule = Schedule.objects.create(
            name="minutely", task="tests.tasks.add", args=[1, 2], cron="* * * * *"
        )
        write_states({schedule.pk: (now - timedelta(minutes=1), "x", 1, False)})
    with override_settings(USE_TZ=True, TIME_ZONE=ZONE):
        if connection.vendor != "sqlite":
            # timestamptz keeps the instants through the switch: put the
            # row where SQLite's naive text lands.
            Schedule.objects.filter(pk=schedule.pk).update(
                last_run_at=now + timedelta(hours=8)
            )
        schedule.refresh_from_db()
        assert schedule.last_run_at > now + timedelta(hours=7)  # the defect's cause
        with caplog.at_level(logging.WARNING, logger="jobs.scheduler"):
            [(_, _, job)] = read_changes([schedule.pk], {}, "default", now)[0]
    assert job is not None and job.next_run is not None
    assert job.next_run - now <= timedelta(minutes=1)  # not 8 h from now
    [warning] = [r for r in caplog.records if "in the future" in r.getMessage()]
    assert "'minutely'" in warning.getMessage()
