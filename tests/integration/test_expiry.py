"""Per-job expiry: a job no worker started in time is recorded FAILED
(JobExpired) and never runs."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.test import override_settings
from django.utils import timezone

from jobs import JobExpired
from jobs.testing import adrain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_job_claimed_after_it_expired_fails_without_running(r):
    result = await tasks.in_order.using(expires=0.2).aenqueue("too late")
    time.sleep(0.3)  # no worker runs meanwhile
    counts = await adrain()
    assert counts["failed"] == 1
    assert r.lrange("test:order", 0, -1) == []  # never ran
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    error = result.errors[-1]
    assert error.exception_class_path == "jobs.exceptions.JobExpired"
    assert "expired at " in error.message
    with pytest.raises(JobExpired):
        await result.aget(timeout=1)


async def test_a_job_started_in_time_runs_and_expiry_counts_from_due_time(r):
    soon = timedelta(milliseconds=200)
    started = time.monotonic()
    result = await tasks.in_order.using(run_after=soon, expires=30).aenqueue("on time")
    # The job's key lives until 30 s past its due time (30.2 s after the enqueue),
    # not past its enqueue (30 s), however long the machine took to get here.
    left = r.pttl(f"arq:job:{result.id}")
    assert left + 1000 * (time.monotonic() - started) > 30_100
    time.sleep(0.25)
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.SUCCESSFUL


async def test_expires_takes_seconds_a_timedelta_or_an_aware_datetime():
    assert tasks.add.using(expires=timedelta(minutes=2)).expires == 120
    at = timezone.now() + timedelta(hours=1)
    result = await tasks.add.using(expires=at).aenqueue(1, 2)
    record = await tasks.add.get_backend().results.aget(result.id)
    recorded = datetime.fromisoformat(record["expires_at"])
    assert abs(recorded - at) < timedelta(milliseconds=1)


async def test_a_naive_expiry_is_time_zone_time_when_use_tz_is_off(r):
    # The seed's settings: timezone.now() is naive Asia/Shanghai wall time, which
    # Django accepts for run_after; expires follows the same rule.
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Shanghai"):
        at = timezone.now() + timedelta(hours=1)
        result = await tasks.add.using(expires=at).aenqueue(1, 2)
        record = await tasks.add.get_backend().results.aget(result.id)
        recorded = datetime.fromisoformat(record["expires_at"])
        assert abs(recorded - timezone.make_aware(at)) < timedelta(milliseconds=1)
    assert 3_590_000 < r.pttl(f"arq:job:{result.id}") <= 3_600_000


async def test_bad_expiry_is_refused_and_nothing_is_written(r):
    past = timezone.now() - timedelta(seconds=1)
    with pytest.raises(InvalidTask, match="could never run"):
        await tasks.add.using(expires=past).aenqueue(1, 1)
    for bad in (0, -5, "soon", timezone.now().replace(tzinfo=None)):
        with pytest.raises(InvalidTask, match="expires must be"):
            tasks.add.using(expires=bad)
    assert r.keys("arq:job:*") == []
