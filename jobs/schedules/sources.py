"""The database side of running schedules: rows in, last runs out.

It runs in a thread, off the event loop: reading rows (all at start-up and on
each reconcile, or the ones a change named) into cron jobs, and writing the
last runs back in batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.db.models import F
from django.db.models.sql.constants import MULTI
from django.tasks.exceptions import InvalidTask
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.exceptions import JobsError
from jobs.schedules import entries
from jobs.schedules.counting import Totals
from jobs.schedules.cronjob import ScheduleCronJob
from jobs.schedules.models import Schedule, to_db

if TYPE_CHECKING:
    from django.db.models.sql.compiler import SQLCompiler

logger = logging.getLogger("jobs.scheduler")

FLUSH_EVERY = 0.5  # seconds between batched writes of last runs to the database
# A worker reloads a row when any of its first columns differ; its own writes
# (last run, result id: the last two) do not count, or each run would reload it.
FINGERPRINT_SIZE = len(entries.ROW_FIELDS) - 2


Change = tuple[str, tuple[Any, ...], "ScheduleCronJob | None"]


def read_changes(
    pks: list[int] | None, known: dict[str, tuple[Any, ...]], alias: str, now: datetime
) -> tuple[list[Change], set[str]]:
    """Read rows; return the ones that differ from `known`, ready to run, and
    the keys of every row read.

    Rows are compared as the database driver returns them, before Django's
    converters (JSON decoding, time zones...): a reconcile that finds nothing
    changed costs the query and a comparison a row, and only changed rows are
    converted and validated.
    """
    raw, compiler = read_rows(pks)
    changed: list[tuple[str, tuple[Any, ...], Any]] = []
    seen: set[str] = set()
    for row in raw:
        key = f"db:{row[0]}"
        seen.add(key)
        fingerprint = tuple(row[:FINGERPRINT_SIZE])
        if known.get(key) != fingerprint:
            changed.append((key, fingerprint, row))
    # One row at a time: each row's dict is gone before the next is built.
    rows = converted(compiler, [row for _, _, row in changed])
    changes = [
        (key, fingerprint, job_of(row, alias, now))
        for (key, fingerprint, _), row in zip(changed, rows, strict=True)
    ]
    return changes, seen


def job_of(row: dict[str, Any], alias: str, now: datetime) -> ScheduleCronJob | None:
    """The cron job of a row, its next run set; None if it is not ours to run."""
    try:
        entry = entries.entry_from_row(row, alias)
    except (JobsError, InvalidTask) as e:
        # Logged once: the row is not read again until it changes.
        logger.error("schedule %r (pk %s) skipped: %s", row["name"], row["id"], e)
        return None
    if entry is None:  # another backend's task: its workers run it
        return None
    job = ScheduleCronJob.of(entry)
    job.resume(now)
    return job


def read_rows(pks: list[int] | None) -> tuple[list[Sequence[Any]], SQLCompiler]:
    """The enabled rows (all, or these pks) as the database driver returns them,
    and the compiler whose converters make them Python values (converted())."""
    close_old_connections()
    rows = Schedule.objects.enabled().order_by()  # any order will do: no sort
    if pks is not None:
        rows = rows.filter(pk__in=pks)
    # values_list() split in two: the query now, Django's converters later and
    # only for the rows that changed (it runs the same two steps in one go).
    compiler = rows.values_list(*entries.ROW_FIELDS).query.get_compiler(rows.db)
    chunks = compiler.execute_sql(MULTI)
    return [row for chunk in chunks for row in chunk], compiler


def converted(
    compiler: SQLCompiler, raw: list[Sequence[Any]]
) -> Iterator[dict[str, Any]]:
    """Rows from read_rows() as values() gives them: dicts of Python values."""
    if not raw:
        return
    for row in compiler.results_iter(results=[raw], tuple_expected=True):
        yield dict(zip(entries.ROW_FIELDS, row, strict=True))


class RunCounts(Protocol):
    """Runs counted where they are enqueued (Redis: see
    jobs.schedules.notify.RedisRunCounts and jobs.schedules.counting)."""

    async def unwritten(self) -> Totals | None:
        """The totals of the schedules whose runs the database may lack."""

    async def written(self, totals: Totals) -> None:
        """Note that the database has `totals`."""


class StateWriter:
    """Write each schedule's last run and run count to the database, in batches.

    A run is counted where it is enqueued (`counts`), and written from there
    by whichever worker flushes next, as many times as it takes: a worker
    killed before or during its flush leaves no run uncounted, and none is
    counted twice (see jobs.schedules.counting).
    """

    def __init__(self, counts: RunCounts | None = None) -> None:
        self.pending: dict[int, tuple[datetime, str, int, bool]] = {}
        self.counts = counts
        self.counts_away = False  # said once an outage, not every flush (0.5 s)

    def add(self, pk: int, tick: datetime, job_id: str, *, disable: bool) -> None:
        """Note a run (counted in `counts` when it was queued)."""
        disabled = self.pending.get(pk, (tick, job_id, 0, False))[3]
        self.pending[pk] = (tick, job_id, 0, disabled or disable)

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()

    async def flush(self) -> None:
        totals = await self._unwritten()
        if not self.pending and totals is None:
            return
        batch, self.pending = self.pending, {}
        try:
            await sync_to_async(write_states)(batch, totals)
        except Exception as e:  # the runs happened; only their bookkeeping is late
            logger.warning("schedules: could not record last runs: %s", e)
            for pk, state in batch.items():
                self.pending.setdefault(pk, state)
            return
        if totals is not None and self.counts is not None:
            try:
                await self.counts.written(totals)
            except RedisError as e:  # written again next time: the same write
                logger.warning("schedules: could not note counts written: %s", e)

    async def _unwritten(self) -> Totals | None:
        if self.counts is None:
            return None
        try:
            totals = await self.counts.unwritten()
        except RedisError as e:  # left where they are, for a later flush
            level = logging.DEBUG if self.counts_away else logging.WARNING
            logger.log(level, "schedules: could not read run counts: %s", e)
            self.counts_away = True
            return None
        self.counts_away = False
        return totals


def write_states(
    batch: dict[int, tuple[datetime, str, int, bool]], totals: Totals | None = None
) -> None:
    """Write last runs (`batch`: tick, job id, runs to add, disable) and the
    run totals Redis counted (`totals`)."""
    runs = totals.runs if totals is not None else {}
    # Rows are locked in primary-key order: two workers flushing overlapping
    # batches then queue behind each other instead of deadlocking (PostgreSQL
    # aborts one of two transactions that lock the same rows in opposite orders).
    with transaction.atomic():
        for pk in sorted(batch.keys() | runs.keys()):
            if pk in runs and totals is not None:
                take_total(pk, totals.epoch, runs[pk])
            if pk not in batch:
                continue
            tick, job_id, own, disable = batch[pk]
            changes: dict[str, Any] = {
                "last_run_at": to_db(tick),
                "last_result_id": job_id,
            }
            if own:
                changes["run_count"] = F("run_count") + own
            if disable:
                changes["enabled"] = False
            Schedule.objects.filter(pk=pk).update(**changes)


def take_total(pk: int, epoch: int, total: int) -> None:
    """Add to a schedule's run_count the runs of Redis's `total` it lacks: the
    same write however often it is repeated (see jobs.schedules.counting)."""
    rows = Schedule.objects.filter(pk=pk)
    added = rows.filter(runs_epoch=epoch, runs_counted__lt=total).update(
        run_count=F("run_count") + total - F("runs_counted"), runs_counted=total
    )
    if not added:  # the first total of a new epoch: counted from zero
        rows.filter(runs_epoch__lt=epoch).update(
            run_count=F("run_count") + total, runs_epoch=epoch, runs_counted=total
        )


def log_reloads(changes: list[Change], gone: set[str]) -> None:
    """One INFO line per schedule a (re)load changed."""
    for key, _, job in changes:
        if job is None:  # invalid (logged) or another backend's
            logger.info("schedule %s reloaded: not run by this worker", key)
        elif job.next_run is None:
            logger.info("schedule %r reloaded: no run left", job.entry.name)
        else:
            logger.info(  # TIME_ZONE time, as the log's own timestamps
                "schedule %r reloaded: next run %s",
                job.entry.name,
                timezone.localtime(job.next_run).isoformat(),
            )
    for key in sorted(gone):
        logger.info("schedule %s dropped (deleted or disabled)", key)
