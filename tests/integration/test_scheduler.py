"""The scheduler inside real workers (in this process), on a real Redis and SQLite."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.db.models import F
from django.tasks import default_task_backend
from django.test import override_settings
from django.utils import timezone

from jobs import crontab
from jobs.models import Schedule
from jobs.redis.keys import SCHEDULES_LAST_KEY
from jobs.schedules.entries import ROW_FIELDS
from jobs.schedules.scheduler import Scheduler
from jobs.schedules.sources import converted, read_changes, read_rows
from jobs.worker import JobsWorker

pytestmark = pytest.mark.django_db(transaction=True)


@asynccontextmanager
async def workers(
    count: int = 1,
    *,
    skews: tuple[float, ...] = (),
    reconcile: float = 300,
) -> AsyncIterator[list[JobsWorker]]:
    """Run `count` workers with schedulers, their clocks skewed by `skews` s."""

    def clock(skew: float) -> Callable[[], datetime]:
        return lambda: datetime.now(UTC) + timedelta(seconds=skew)

    started = []
    for index in range(count):
        skew = skews[index] if index < len(skews) else 0.0
        scheduler = Scheduler(clock=clock(skew), reconcile=reconcile)
        started.append(
            JobsWorker(default_task_backend, handle_signals=False, scheduler=scheduler)
        )
    tasks = [asyncio.create_task(worker.async_run()) for worker in started]
    try:
        await asyncio.gather(*(w.scheduler.loaded.wait() for w in started))
        yield started
    finally:
        for worker in started:
            worker.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in started:
            await worker.close()


async def wait_for(predicate, timeout: float = 15, what: str = "") -> None:
    """Poll a quick predicate (or an awaitable one) without blocking the workers."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)


async def stops(r, key: str, worker: JobsWorker, pk: int) -> None:
    """Wait until the worker has dropped the schedule; then no run may follow."""
    assert worker.scheduler is not None
    jobs = worker.scheduler.jobs  # type: ignore[attr-defined]
    await wait_for(lambda: f"db:{pk}" not in jobs, what="the schedule dropped")
    await asyncio.sleep(0.3)  # a run enqueued just before starts meanwhile
    before = runs(r, key)
    await asyncio.sleep(1.5)  # more than one interval
    assert runs(r, key) == before


def ticks_of(r, pk: int | str) -> list[int]:
    """The run times (ms) enqueued for a schedule, from their unique ids."""
    keys = r.keys(f"jobs:unique:schedule:{pk}:*")
    return sorted(int(k.decode().rsplit(":", 1)[1]) for k in keys)


def runs(r, key: str) -> int:
    return int(r.get(f"test:runs:{key}") or 0)


@sync_to_async
def create(**fields) -> Schedule:
    with transaction.atomic():
        schedule = Schedule(**fields)
        schedule.full_clean()
        schedule.save()
    return schedule


def every(seconds: float, key: str, **fields) -> dict:
    return {
        "name": key,
        "task": "tests.tasks.counted",
        "args": [key],
        "interval": timedelta(seconds=seconds),
        **fields,
    }


async def test_a_second_level_schedule_fires_every_second_and_records_runs(r):
    async with workers():
        schedule = await create(**every(1, "tick"))
        await wait_for(lambda: len(ticks_of(r, schedule.pk)) >= 3)
        await wait_for(lambda: runs(r, "tick") >= 3)
    ticks = ticks_of(r, schedule.pk)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert min(gaps) == 1000 and all(gap % 1000 == 0 for gap in gaps)
    anchor = int(schedule.created_at.replace(microsecond=0).timestamp() * 1000)
    assert all((tick - anchor) % 1000 == 0 for tick in ticks)  # counted from creation
    assert all(tick % 1000 == 0 for tick in ticks)  # on whole seconds
    await sync_to_async(schedule.refresh_from_db)()
    assert schedule.run_count == len(ticks)
    assert int(schedule.last_run_at.timestamp() * 1000) == ticks[-1]
    assert schedule.last_result_id == f"schedule:{schedule.pk}:{ticks[-1]}"
    result = await default_task_backend.aget_result(schedule.last_result_id)
    assert result.args == ["tick"]
    assert result.meta["schedule"] == "tick"


async def test_three_workers_with_skewed_clocks_enqueue_each_run_once(r):
    async with workers(3, skews=(-2.0, 0.0, 3.0)):
        schedule = await create(**every(1, "skewed"))
        await wait_for(lambda: runs(r, "skewed") >= 6, timeout=20)
    await asyncio.sleep(0.3)  # let the last enqueued job finish
    ticks = ticks_of(r, schedule.pk)
    assert len(ticks) >= 6
    assert len(set(ticks)) == len(ticks)
    # Each run ran once: as many runs as distinct run times, none doubled.
    assert runs(r, "skewed") == len(ticks)
    assert all((b - a) % 1000 == 0 for a, b in itertools.pairwise(ticks))


async def test_overlap_skip_waits_for_the_previous_run(r):
    async with workers():
        skip = await create(**every(1, "slow", overlap="skip"), kwargs={"seconds": 2})
        allow = await create(**every(1, "slow-allowed"), kwargs={"seconds": 2})
        await wait_for(lambda: len(ticks_of(r, skip.pk)) >= 2)
        allowed = ticks_of(r, allow.pk)
    ticks = ticks_of(r, skip.pk)
    # A new run only once the previous (2 s) one had finished.
    assert all(b - a >= 2000 for a, b in itertools.pairwise(ticks))
    assert any(b - a < 2000 for a, b in itertools.pairwise(allowed))


@sync_to_async
def backdate(schedule: Schedule, by: timedelta) -> None:
    """Pretend the schedule was created (and last edited) `by` ago."""
    then = timezone.now() - by
    Schedule.objects.filter(pk=schedule.pk).update(created_at=then, updated_at=then)


async def test_missed_runs_follow_each_policy_and_never_burst(r):
    # Hourly, created a day and a half hour ago: 24 runs missed, the latest
    # of them 30 minutes ago.
    hourly = {"interval": timedelta(hours=1), "task": "tests.tasks.counted"}
    cases = {
        "skip": {"missed": "skip"},
        "once": {"missed": "once"},
        "grace-1h": {"missed": "grace", "grace": timedelta(hours=1)},
        "grace-10m": {"missed": "grace", "grace": timedelta(minutes=10)},
    }
    made = {}
    for name, policy in cases.items():
        made[name] = await create(name=name, args=[name], **hourly, **policy)
        await backdate(made[name], timedelta(days=1, minutes=30))
    async with workers():
        await wait_for(lambda: runs(r, "once") == 1)
        await asyncio.sleep(1.5)  # time for any wrong run to be enqueued
    counts = {name: len(ticks_of(r, s.pk)) for name, s in made.items()}
    assert counts == {"skip": 0, "once": 1, "grace-1h": 1, "grace-10m": 0}
    latest = ticks_of(r, made["once"].pk)[0] / 1000
    assert 29 * 60 < datetime.now(UTC).timestamp() - latest < 31 * 60


async def test_a_run_missed_by_less_than_a_minute_still_runs(r):
    """Restarting workers (a deploy) must not lose a daily run."""
    schedule = await create(**every(3600, "restart"))
    await backdate(schedule, timedelta(hours=1, seconds=20))
    async with workers():
        await wait_for(lambda: runs(r, "restart") == 1)
    assert len(ticks_of(r, schedule.pk)) == 1


def insert_raw(name: str, **columns) -> None:
    row = {
        "name": name,
        "task": "tests.tasks.counted",
        "args": '["raw"]',
        "kwargs": "{}",
        "queue_name": "",
        "cron": "",
        "interval": None,
        "clocked_time": None,
        "timezone": "UTC",
        "start_time": None,
        "expires": None,
        "one_off": False,
        "enabled": True,
        "overlap": "allow",
        "missed": "skip",
        "grace": None,
        "description": "",
        "last_run_at": None,
        "run_count": 0,
        "last_result_id": "",
        "created_at": connection.ops.adapt_datetimefield_value(timezone.now()),
        "updated_at": connection.ops.adapt_datetimefield_value(timezone.now()),
        **columns,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO jobs_schedule ({', '.join(row)}) "
            f"VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )


async def test_bad_rows_from_raw_sql_are_skipped_once_and_others_run(r, caplog):
    bad = {
        "bad-cron": {"cron": "61 * * * *"},
        "bad-zone": {"cron": "* * * * *", "timezone": "Mars/Olympus"},
        "bad-task": {"cron": "* * * * *", "task": "tests.tasks.nope"},
        "bad-args": {"cron": "* * * * *", "args": '{"a": 1}'},
        "bad-call": {"cron": "* * * * *", "args": "[1, 2, 3, 4]"},
    }
    for name, columns in bad.items():
        await sync_to_async(insert_raw)(name, **columns)
    good = await create(**every(1, "good"))
    logger = logging.getLogger("jobs.scheduler")
    logger.addHandler(caplog.handler)
    try:
        async with workers(reconcile=0.3):
            await wait_for(lambda: runs(r, "good") >= 3)
            await asyncio.sleep(1)  # several reconciles more
    finally:
        logger.removeHandler(caplog.handler)
    # Each record once, however many handlers passed it on to caplog.
    records = {id(rec): rec for rec in caplog.records}.values()
    errors = [rec.getMessage() for rec in records if rec.levelname == "ERROR"]
    for name in bad:
        assert sum(f"schedule {name!r}" in e for e in errors) == 1, (name, errors)
    assert any("61 is out of range 0-59" in e for e in errors)
    assert any("Unknown time zone 'Mars/Olympus'" in e for e in errors)
    assert any("args must be a JSON list" in e for e in errors)
    enqueued = {k.decode().split(":")[3] for k in r.keys("jobs:unique:schedule:*")}
    assert enqueued == {str(good.pk)}


async def test_changes_through_the_orm_reach_a_running_worker(r):
    """With the reconcile 5 minutes away, only the published change can do it."""
    async with workers(reconcile=300) as (worker,):
        schedule = await create(**every(1, "v1"))
        await wait_for(lambda: runs(r, "v1") >= 1, what="create")

        schedule.args = ["v2"]
        await sync_to_async(schedule.save)()
        await wait_for(lambda: runs(r, "v2") >= 1, what="edit")

        schedule.enabled = False
        await sync_to_async(schedule.save)()
        await stops(r, "v2", worker, schedule.pk)

        schedule.enabled = True
        schedule.args = ["v3"]
        await sync_to_async(schedule.save)()
        await wait_for(lambda: runs(r, "v3") >= 1, what="re-enable")

        key = f"db:{schedule.pk}"
        assert r.hexists(SCHEDULES_LAST_KEY, key)  # what missed-run policies read
        await sync_to_async(schedule.delete)()
        await stops(r, "v3", worker, schedule.pk)
        assert not r.hexists(SCHEDULES_LAST_KEY, key)  # nothing left behind


async def test_bulk_update_is_picked_up_by_the_reconcile(r):
    async with workers(reconcile=0.5) as (worker,):
        schedule = await create(**every(1, "bulk-a"))
        await wait_for(lambda: runs(r, "bulk-a") >= 1)
        rows = Schedule.objects.filter(pk=schedule.pk)
        await sync_to_async(rows.update)(args=["bulk-b"])  # no signal, no message
        await wait_for(lambda: runs(r, "bulk-b") >= 1)
        await sync_to_async(rows.update)(enabled=False)
        await stops(r, "bulk-b", worker, schedule.pk)


def test_rows_read_in_two_steps_are_what_values_gives(r):
    """The raw read and Django's converters applied afterwards, with and
    without time zones (dates, durations, JSON, booleans)."""
    for use_tz in (True, False):
        with override_settings(USE_TZ=use_tz, TIME_ZONE="Europe/Berlin"):
            Schedule.objects.all().delete()
            Schedule.objects.create(
                **every(90, "interval"), kwargs={"x": [1]}, one_off=True
            )
            Schedule.objects.create(
                name="cron",
                task="tests.tasks.counted",
                cron="5 4 * * *",
                start_time=timezone.now(),
                last_run_at=timezone.now(),
                missed="grace",
                grace=timedelta(minutes=5),
            )
            raw, compiler = read_rows(None)
            found = sorted(converted(compiler, raw), key=lambda row: row["id"])
            values = Schedule.objects.enabled().order_by("id").values(*ROW_FIELDS)
            assert found == list(values)


def test_only_rows_that_changed_are_converted_and_rebuilt(r):
    """A reconcile compares raw rows: the worker's own writes (last run, result
    id, run count) change nothing; a bulk update() of one row rebuilds it alone."""
    Schedule.objects.bulk_create(
        Schedule(**every(60 + i, f"row-{i}")) for i in range(5)
    )
    now = datetime.now(UTC)
    changes, seen = read_changes(None, {}, "default", now)
    assert len(changes) == len(seen) == 5
    known = {key: fingerprint for key, fingerprint, _ in changes}
    first = Schedule.objects.order_by("pk")[0]
    rows = Schedule.objects.filter(pk=first.pk)
    rows.update(last_run_at=now, last_result_id="x", run_count=F("run_count") + 1)
    assert read_changes(None, known, "default", now) == ([], seen)
    rows.update(args=["edited"])
    changes, _ = read_changes(None, known, "default", now)
    assert [(key, job.entry.args) for key, _, job in changes] == [
        (f"db:{first.pk}", ["edited"])
    ]


async def test_queryset_enable_and_disable_tell_running_workers(r):
    async with workers(reconcile=300) as (worker,):
        schedule = await create(**every(1, "switch"), enabled=False)
        await asyncio.sleep(1.5)
        assert runs(r, "switch") == 0
        await sync_to_async(Schedule.objects.filter(pk=schedule.pk).enable)()
        await wait_for(lambda: runs(r, "switch") >= 1)
        await sync_to_async(Schedule.objects.all().disable)()
        await stops(r, "switch", worker, schedule.pk)


async def test_one_off_and_clocked_schedules_run_once_then_disable(r):
    async with workers():
        one_off = await create(**every(1, "one-off"), one_off=True)
        at = timezone.now() + timedelta(seconds=1.5)
        once = await create(
            name="clocked",
            task="tests.tasks.counted",
            args=["clocked"],
            clocked_time=at,
        )
        await wait_for(lambda: runs(r, "clocked") == 1)
        await asyncio.sleep(1.5)
    assert runs(r, "one-off") == 1
    assert runs(r, "clocked") == 1
    for schedule in (one_off, once):
        await sync_to_async(schedule.refresh_from_db)()
        assert schedule.enabled is False
        assert schedule.run_count == 1
    assert ticks_of(r, once.pk) == [int(at.timestamp() * 1000)]


async def test_static_schedules_from_settings_run_beside_the_rows(r):
    static = {
        "sum-task": {
            "task": "tests.tasks.counted",
            "schedule": timedelta(seconds=1),
            "args": ("static",),
        },
        "send-report": {
            "task": "tests.tasks.counted",
            "schedule": crontab(hour=4, minute=30, day_of_week=1),
            "args": ("weekly",),
        },
    }
    with override_settings(JOBS_SCHEDULES=static):
        async with workers(2):
            await wait_for(lambda: runs(r, "static") >= 3)
    ticks = ticks_of(r, "settings:sum-task")
    assert len(ticks) >= 3 and all(t % 1000 == 0 for t in ticks)  # from the epoch
    assert runs(r, "static") == len(ticks)
    assert runs(r, "weekly") == 0  # a weekly run long past is missed, not run
    last = r.hget(SCHEDULES_LAST_KEY, "settings:sum-task").decode()
    assert last == f"schedule:settings:sum-task:{ticks[-1]}"


@pytest.mark.parametrize(("late", "expected"), [(30, 1), (90, 0)])
async def test_a_new_settings_schedule_runs_a_tick_of_the_last_minute_only(
    r, late, expected
):
    # docs/schedules.md: for a settings schedule that never ran, a run due less
    # than 60 s before the worker started runs at once (as after a restart);
    # one due earlier is not a missed run.
    hourly = {"task": "tests.tasks.counted", "schedule": 3600, "args": ("new",)}
    to_hour = 3600 - datetime.now(UTC).timestamp() % 3600
    with override_settings(JOBS_SCHEDULES={"new": hourly}):
        async with workers(skews=(to_hour + late,)):
            await asyncio.sleep(1)  # the start-up enqueue, if any, is done
    assert runs(r, "new") == expected


async def test_a_reload_says_the_next_run_in_time_zone_time(r, caplog):
    # Before: "next run 2026-12-06T20:30:00+00:00" for Monday 04:30 in Shanghai,
    # a Sunday, beside log timestamps in Shanghai time.
    caplog.set_level(logging.INFO, logger="jobs.scheduler")
    logger = logging.getLogger("jobs.scheduler")
    logger.addHandler(caplog.handler)
    try:
        with override_settings(USE_TZ=False, TIME_ZONE="Asia/Shanghai"):
            async with workers():
                await create(
                    name="monday",
                    task="tests.tasks.counted",
                    args=["monday"],
                    cron="30 4 * * mon",
                    timezone="Asia/Shanghai",
                )
                await wait_for(lambda: reloads(caplog), what="the reload line")
    finally:
        logger.removeHandler(caplog.handler)
    assert "T04:30:00+08:00" in reloads(caplog)[0]


def reloads(caplog) -> list[str]:
    return [m for m in caplog.messages if "'monday' reloaded" in m]


async def test_without_use_tz_naive_datetimes_work_end_to_end(r):
    with override_settings(USE_TZ=False, TIME_ZONE="Europe/Berlin"):
        start = datetime.now() - timedelta(seconds=0.5)  # naive, Berlin wall time
        schedule = await create(**every(1, "naive"), start_time=start)
        assert schedule.created_at.tzinfo is None
        async with workers():
            await wait_for(lambda: runs(r, "naive") >= 2)
        written = Schedule.objects.filter(pk=schedule.pk, run_count__gte=2).exists
        await wait_for(sync_to_async(written), what="the last run written")
        await sync_to_async(schedule.refresh_from_db)()
        assert schedule.last_run_at.tzinfo is None
        ticks = ticks_of(r, schedule.pk)
        berlin = schedule.last_run_at.replace(tzinfo=timezone.get_default_timezone())
        assert int(berlin.timestamp() * 1000) in ticks
        runs_next = await sync_to_async(schedule.next_runs)(2)
        assert runs_next[1] - runs_next[0] == timedelta(seconds=1)
