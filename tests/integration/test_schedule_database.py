"""Schedules through the database the suite runs on (SQLite, or PostgreSQL's
timestamptz and row locks with JOBS_TEST_DATABASE=postgres).

What a worker writes (last runs) and reads back (rows, raw, then converted) must
be the same instants, with and without USE_TZ, or a worker reloading a row would
repeat or skip runs; and workers writing at once must not fail each other.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from jobs.schedules.counting import Totals
from jobs.schedules.models import Schedule, to_db
from jobs.schedules.sources import read_changes, write_states

pytestmark = pytest.mark.django_db(transaction=True)

ZONE = "America/New_York"
# Instants around New York's 2026 clock changes (UTC): clocks went forward on
# March 8 at 07:00 and back on November 1 at 06:00, repeating 01:00-02:00.
TICKS = {
    "summer": datetime(2026, 7, 1, 13, 30, tzinfo=UTC),
    "winter": datetime(2026, 1, 15, 14, 30, 0, 250000, tzinfo=UTC),
    "after-the-gap": datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 03:30 EDT
    "repeated-first": datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
    "repeated-second": datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 EST
}
ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
# With USE_TZ off, SQLite stores wall time; in the hour that repeats, which of
# the two instants a wall time means is lost (PostgreSQL keeps the instant).
SECOND_PASS_READ_EARLY = pytest.mark.xfail(
    not ON_POSTGRESQL,
    strict=True,
    reason="SQLite keeps naive wall time without its fold: the repeated hour's "
    "second 01:30 reads back as its first, an hour early",
)


def cases(use_tz_off_marks: dict[str, pytest.MarkDecorator]) -> list[object]:
    """(use_tz, tick name) for every tick, with and without USE_TZ."""
    return [
        pytest.param(
            use_tz,
            name,
            id=f"use_tz={use_tz}-{name}",
            marks=[] if use_tz else use_tz_off_marks.get(name, []),
        )
        for use_tz in (True, False)
        for name in TICKS
    ]


@pytest.fixture
def row():
    def make(name: str = "times", **fields) -> Schedule:
        return Schedule.objects.create(
            name=name,
            task="tests.tasks.counted",
            args=["times"],
            interval=timedelta(minutes=10),
            timezone=ZONE,
            **fields,
        )

    return make


def since_of(pk: int) -> datetime | None:
    """When a worker loading the row takes its runs to be done up to."""
    changes, _ = read_changes([pk], {}, "default", datetime.now(UTC))
    [(_, _, job)] = changes
    assert job is not None
    return job.entry.since


@pytest.mark.parametrize(
    ("use_tz", "name"),
    cases({"repeated-second": SECOND_PASS_READ_EARLY}),
)
def test_a_last_run_a_worker_wrote_reads_back_as_the_same_instant(row, use_tz, name):
    tick = TICKS[name]
    with override_settings(USE_TZ=use_tz, TIME_ZONE=ZONE):
        schedule = row()
        # Older than the run, so that the run is what the worker goes by.
        Schedule.objects.filter(pk=schedule.pk).update(
            updated_at=to_db(tick - timedelta(days=1))
        )
        write_states({schedule.pk: (tick, f"schedule:{schedule.pk}:1", 1, False)})
        assert since_of(schedule.pk) == tick
        schedule.refresh_from_db()
        assert schedule.run_count == 1
        stored = schedule.last_run_at
        assert (stored.tzinfo is not None) is use_tz
        if not use_tz:  # wall time in TIME_ZONE, as Django stores it
            assert stored == tick.astimezone(timezone.get_default_timezone()).replace(
                tzinfo=None
            )


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has no time zone type")
@pytest.mark.parametrize(("use_tz", "name"), cases({}))
def test_postgresql_holds_the_instant_a_worker_wrote(row, use_tz, name):
    """Other clients (SQL, reports) see the run's true instant in timestamptz."""
    tick = TICKS[name]
    with override_settings(USE_TZ=use_tz, TIME_ZONE=ZONE):
        schedule = row()
        write_states({schedule.pk: (tick, "x", 1, False)})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXTRACT(EPOCH FROM last_run_at) FROM jobs_schedule "
                "WHERE id = %s",
                [schedule.pk],
            )
            [(epoch,)] = cursor.fetchall()
    assert float(epoch) == tick.timestamp()


@pytest.mark.parametrize("use_tz", [True, False])
def test_a_reconcile_finds_no_change_in_a_row_the_worker_only_ran(row, use_tz):
    with override_settings(USE_TZ=use_tz, TIME_ZONE=ZONE):
        schedule = row(
            start_time=to_db(TICKS["summer"]),
            expires=to_db(TICKS["winter"].replace(year=2027)),
        )
        now = datetime.now(UTC)
        changes, seen = read_changes(None, {}, "default", now)
        known = {key: fingerprint for key, fingerprint, _ in changes}
        write_states({schedule.pk: (TICKS["summer"], "x", 1, False)})
        assert read_changes(None, known, "default", now) == ([], seen)
        Schedule.objects.filter(pk=schedule.pk).update(
            expires=to_db(TICKS["winter"].replace(year=2028))
        )
        changes, _ = read_changes(None, known, "default", now)
        [(_, _, job)] = changes
        assert job is not None
        assert job.entry.expires == TICKS["winter"].replace(year=2028)
        assert job.entry.start == TICKS["summer"]


@pytest.mark.parametrize("use_tz", [True, False])
def test_window_filters_compare_instants(row, use_tz):
    """active() and expired() compare with the instant given, in any zone."""
    expires = TICKS["repeated-second"] + timedelta(hours=1)  # 02:30 EST
    with override_settings(USE_TZ=use_tz, TIME_ZONE=ZONE):
        row(expires=to_db(expires))
        just_before = expires - timedelta(seconds=1)
        assert Schedule.objects.active(just_before).count() == 1
        assert Schedule.objects.expired(just_before).count() == 0
        assert Schedule.objects.active(expires).count() == 0
        tokyo = expires.astimezone(ZoneInfo("Asia/Tokyo"))
        assert Schedule.objects.expired(tokyo).count() == 1


def flush_in_thread(
    batch: dict[int, tuple[datetime, str, int, bool]],
    start: threading.Barrier,
    errors: list[Exception],
) -> threading.Thread:
    """One worker's StateWriter flush, on a connection of its own."""

    def run() -> None:
        try:
            connection.ensure_connection()
            start.wait(10)  # both connected: the flushes overlap
            write_states(batch)
        except Exception as e:
            errors.append(e)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


SLOW_UPDATES = """
CREATE FUNCTION jobs_test_slow() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
CREATE TRIGGER jobs_test_slow AFTER UPDATE ON jobs_schedule
  FOR EACH ROW EXECUTE FUNCTION jobs_test_slow();
"""
FAST_UPDATES = """
DROP TRIGGER jobs_test_slow ON jobs_schedule;
DROP FUNCTION jobs_test_slow();
"""


def test_two_workers_recording_the_same_schedules_at_once_both_succeed(row):
    first, second = row(), row(name="other")
    tick = TICKS["summer"]
    # Each update holds its row a little longer (PostgreSQL: a trigger), as
    # a busy database would; SQLite takes one writer at a time anyway.
    if ON_POSTGRESQL:
        with connection.cursor() as cursor:
            cursor.execute(SLOW_UPDATES)
    errors: list[Exception] = []
    start = threading.Barrier(2)
    try:
        threads = [
            flush_in_thread(
                {first.pk: (tick, "a", 1, False), second.pk: (tick, "a", 1, False)},
                start,
                errors,
            ),
            flush_in_thread(
                {second.pk: (tick, "b", 1, False), first.pk: (tick, "b", 1, False)},
                start,
                errors,
            ),
        ]
        for thread in threads:
            thread.join(30)
    finally:
        if ON_POSTGRESQL:
            with connection.cursor() as cursor:
                cursor.execute(FAST_UPDATES)
    assert errors == []
    counts = Schedule.objects.order_by("pk").values_list("run_count", flat=True)
    assert list(counts) == [2, 2]


def test_a_run_total_is_counted_once_however_often_it_is_written(row):
    """Each worker's flush writes Redis's totals until Redis hears the database
    has them: the same totals written again, or late, add nothing; a new epoch
    (a Redis that lost its hash) counts from zero."""
    schedule = row()
    first = Totals(epoch=1_000, runs={schedule.pk: 3})
    write_states({}, first)
    write_states({}, first)  # a worker killed before it said it was written
    assert run_count(schedule) == 3
    write_states({}, Totals(epoch=1_000, runs={schedule.pk: 5}))
    write_states({}, first)  # read before the write above, written after it
    assert run_count(schedule) == 5
    write_states({}, Totals(epoch=2_000, runs={schedule.pk: 2}))  # Redis lost it
    write_states({}, Totals(epoch=1_000, runs={schedule.pk: 6}))  # the old epoch
    assert run_count(schedule) == 7


def run_count(schedule: Schedule) -> int:
    schedule.refresh_from_db()
    return schedule.run_count
