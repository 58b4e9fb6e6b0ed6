"""Periodic schedules, run inside `jobs_worker` by this loop, not arq's cron.

Each schedule (a `Schedule` row or a JOBS_SCHEDULES item) becomes one
`ScheduleCronJob` (arq's CronJob class, holding the next run that
jobs.schedules.timing computes). arq's own cron loop looks at every cron job
each half second (it does, under `arq jobs.arq.WorkerSettings`:
jobs.schedules.arqcron); here they sit in a heap by next run, so 10,000
schedules cost one comparison a second while idle.

Exactly once per run, however many workers: a run's job id is the same in every
worker, `schedule:<pk>:<run ms>` (arq's trick), and the backend enqueues an id
once a day at most. Workers whose clocks differ by seconds enqueue the same id.

Live changes: saving or deleting a Schedule publishes its pk on a Redis channel
after the commit; each worker reloads that row alone. Bulk `update()` and raw
SQL send nothing: every JOBS_SCHEDULES_RECONCILE seconds (30) a worker compares
all rows with what it runs and reloads the ones that differ.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from redis.exceptions import RedisError

from jobs import conf, registry
from jobs.enqueue import counted
from jobs.exceptions import EnqueueError, JobsError
from jobs.redis.keys import (
    SCHEDULES_CHANNEL,
    SCHEDULES_LAST_KEY,
    SCHEDULES_RUNS_KEY,
    SCHEDULES_UNWRITTEN_KEY,
    UNIQUE_TTL,
)
from jobs.schedules import entries, static
from jobs.schedules.cronjob import TOLERANCE, ScheduleCronJob, last_tick
from jobs.schedules.entries import Entry
from jobs.schedules.notify import RedisRunCounts
from jobs.schedules.sources import Change, StateWriter, log_reloads, read_changes

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from jobs.backend import JobsBackend
    from jobs.worker import JobsWorker

logger = logging.getLogger("jobs.scheduler")

MAX_SLEEP = 1.0  # seconds; the clock is read at least this often (steps, suspend)
FIRE_BATCH = 200  # runs enqueued concurrently
RETRY_AFTER = timedelta(seconds=1)  # a run Redis refused is tried again
PENDING = (TaskResultStatus.READY, TaskResultStatus.RUNNING)
NAMED_MAX = 20  # reloads logged one line a schedule; more: the summary only


class Scheduler:
    """Enqueue the runs of every schedule, beside a worker's job loop.

    clock: returns the current time (aware); tests skew it.
    reconcile: seconds between full comparisons with the database.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        reconcile: float | None = None,
    ) -> None:
        self.now = clock or (lambda: datetime.now(UTC))
        self.reconcile_every = reconcile or conf.jobs_settings.SCHEDULES_RECONCILE
        self.jobs: dict[str, ScheduleCronJob] = {}
        self.fingerprints: dict[str, tuple[Any, ...]] = {}
        self.heap: list[tuple[float, int, ScheduleCronJob]] = []
        self.counter = 0
        self.wake = asyncio.Event()
        self.changed: set[int] = set()
        self.full_reload = True
        self.reload = asyncio.Event()
        self.writer = StateWriter()
        self.loaded = asyncio.Event()  # set once the database was read
        self.retrying: set[str] = set()  # schedules whose enqueue failed (said once)

    async def run(self, worker: JobsWorker) -> None:
        self.worker = worker
        self.attach(worker.backend, worker.pool)
        await self.load_static()
        self.reload.set()  # the first read of the database, at once
        loops = [self.ticking(), self.loading(), self.listening(), self.writer.loop()]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.shield(self.writer.flush())

    def attach(self, backend: JobsBackend, pool: Redis) -> None:
        """What fire() needs: the backend and Redis (arq's cron calls it alone:
        jobs.schedules.arqcron)."""
        self.backend, self.pool = backend, pool
        self.writer.counts = RedisRunCounts(pool)

    # The heap

    def install(self, entry: Entry, now: datetime) -> None:
        # The first run after what is already done: when that is in the past,
        # handle() applies the missed-run policy to it.
        job = ScheduleCronJob.of(entry)
        job.resume(now)
        if job.next_run is None:
            self.jobs.pop(entry.key, None)
            return
        self.jobs[entry.key] = job
        self.push(job, job.next_run)

    def push(self, job: ScheduleCronJob, at: datetime) -> None:
        self.push_all([(job, at)])

    def push_all(self, timed: list[tuple[ScheduleCronJob, datetime]]) -> None:
        items = []
        for job, at in timed:
            self.counter += 1
            job.seq = self.counter
            items.append((at.timestamp(), job.seq, job))
        if not items:
            return
        if len(items) > len(self.heap):  # a load: one heapify beats n pushes
            self.heap += items
            heapq.heapify(self.heap)
        else:
            for item in items:
                heapq.heappush(self.heap, item)
        if len(self.heap) > 2 * len(self.jobs) + 1000:
            self.heap = [item for item in self.heap if self.current(item)]
            heapq.heapify(self.heap)
        self.wake.set()

    def current(self, item: tuple[float, int, ScheduleCronJob]) -> bool:
        _, seq, job = item
        return self.jobs.get(job.entry.key) is job and job.seq == seq

    def remove(self, key: str) -> None:
        self.jobs.pop(key, None)
        self.fingerprints.pop(key, None)

    def drop(self, job: ScheduleCronJob) -> None:
        """Forget a job that has no more runs (unless a reload replaced it)."""
        if self.jobs.get(job.entry.key) is job:
            del self.jobs[job.entry.key]

    async def ticking(self) -> None:
        while True:
            self.wake.clear()
            try:
                await self.fire_due()
            except Exception:  # never let one bad run stop the schedules
                logger.exception("schedules: tick failed")
            delay = MAX_SLEEP
            if self.heap:
                delay = min(delay, self.heap[0][0] - self.now().timestamp())
            if delay > 0:
                try:
                    await asyncio.wait_for(self.wake.wait(), delay)
                except TimeoutError:
                    pass

    async def fire_due(self) -> None:
        now = self.now()
        due: list[ScheduleCronJob] = []
        while self.heap and self.heap[0][0] <= now.timestamp():
            item = heapq.heappop(self.heap)
            if self.current(item):
                due.append(item[2])
        for start in range(0, len(due), FIRE_BATCH):
            batch = due[start : start + FIRE_BATCH]
            await asyncio.gather(*(self.handle(job, now) for job in batch))

    async def handle(self, job: ScheduleCronJob, now: datetime) -> None:
        entry, tick = job.entry, job.next_run
        assert tick is not None
        job.calculate_next(tick)
        if job.next_run is not None and job.next_run <= now:
            # Runs were missed (no worker ran, or this one slept): only the
            # latest of them is considered, never a burst.
            tick = entry.previous_run(now) or tick
            job.calculate_next(now)
        outcome = "missed"
        if self.on_time(entry, tick, now):
            outcome = await self.fire(entry, tick)
        if outcome == "retry":  # the same run again soon, while it is not missed
            job.next_run = tick
            self.push(job, now + RETRY_AFTER)
        elif job.next_run is None or (entry.once and outcome in ("enqueued", "dup")):
            self.drop(job)  # "dup": another worker enqueued it, just as well
        else:
            self.push(job, job.next_run)

    def on_time(self, entry: Entry, tick: datetime, now: datetime) -> bool:
        late = now - tick
        if entry.missed == "once" or late <= timedelta(0):
            return True
        limit = entry.grace if entry.missed == "grace" else TOLERANCE
        if late <= (limit or TOLERANCE):
            return True
        logger.info(
            "schedule %r: missed its %s run by %s (missed=%s); skipped",
            entry.name,
            tick.isoformat(),
            late,
            entry.missed,
        )
        return False

    # One run

    async def fire(self, entry: Entry, tick: datetime) -> str:
        """Enqueue one run: "enqueued", "dup", "skipped", "failed" or "retry"."""
        if entry.skip_if_running and await self.still_running(entry):
            logger.info("schedule %r: previous run still pending; skipped", entry.name)
            return "skipped"
        job_id = entry.job_id(tick)
        try:
            task = entries.resolve_task(entry.task, entry.queue_name)
            meta = {"schedule": entry.name, "scheduled_at": tick.isoformat()}
            prepared = self.backend.prepare(
                task,
                entry.args,
                entry.kwargs,
                job_id=job_id,
                meta=meta,
                reserve=UNIQUE_TTL,  # a day, whatever RESULT_TTL: no run twice
            )
            if entry.pk is not None:  # run_count: see sources.StateWriter
                prepared = counted(
                    prepared, SCHEDULES_RUNS_KEY, SCHEDULES_UNWRITTEN_KEY, str(entry.pk)
                )
            queued = await self.backend.asubmit(prepared)
        except EnqueueError as e:  # once an outage, not at each retry (1 s apart)
            level = logging.DEBUG if entry.key in self.retrying else logging.WARNING
            logger.log(
                level, "schedule %r: could not enqueue (%s); retrying", entry.name, e
            )
            self.retrying.add(entry.key)
            return "retry"
        except (JobsError, InvalidTask) as e:
            logger.error("schedule %r: cannot enqueue: %s", entry.name, e)
            return "failed"
        self.retrying.discard(entry.key)
        if not queued:
            return "dup"
        logger.info("schedule %r: enqueued %s", entry.name, job_id)
        await self.record(entry, tick, job_id)
        return "enqueued"

    async def still_running(self, entry: Entry) -> bool:
        try:
            raw = await self.pool.hget(SCHEDULES_LAST_KEY, entry.key)  # type: ignore[misc]
        except RedisError:
            raw = None
        job_id = raw.decode() if raw else entry.last_result_id
        if not job_id:
            return False
        try:
            result = await self.backend.aget_result(job_id)
        except (TaskResultDoesNotExist, JobsError):
            return False
        return result.status in PENDING

    async def record(self, entry: Entry, tick: datetime, job_id: str) -> None:
        try:
            await self.pool.hset(SCHEDULES_LAST_KEY, entry.key, job_id)  # type: ignore[misc]
        except RedisError as e:
            logger.warning("schedule %r: last run not recorded: %s", entry.name, e)
        if entry.pk is not None:
            self.writer.add(entry.pk, tick, job_id, disable=entry.once)

    # Loading

    async def load_static(self) -> None:
        try:
            found, problems = static.static_entries(conf.jobs_settings.SCHEDULES)
        except (TypeError, ValueError) as e:  # not a dict: `manage.py check` says so
            logger.error("JOBS_SCHEDULES ignored: %s", e)
            return
        for name, problem in problems:
            logger.error("JOBS_SCHEDULES[%r] skipped: %s", name, problem)
        try:
            last = await self.pool.hgetall(SCHEDULES_LAST_KEY)  # type: ignore[misc]
        except RedisError:
            last = {}
        now = self.now()
        for entry in found:
            if registry.get(entry.task).backend != self.backend.alias:
                continue
            since = last_tick(last.get(entry.key.encode()))
            self.install(replace(entry, since=since), now)
        if found:
            logger.info("schedules: %d from settings and code", len(found))

    async def loading(self) -> None:
        failures = 0
        while True:
            try:
                await asyncio.wait_for(self.reload.wait(), self.reconcile_every)
            except TimeoutError:
                self.full_reload = True
            self.reload.clear()
            full, pks = self.full_reload, self.changed
            self.full_reload, self.changed = False, set()
            try:
                await self.load(None if full else sorted(pks))
                failures = 0
            except Exception as e:  # e.g. the database is away: try again later
                failures += 1
                logger.error("schedules: could not read the database: %s", e)
                self.full_reload = full or self.full_reload
                self.changed |= pks
                await asyncio.sleep(min(2.0**failures, self.reconcile_every))
                self.reload.set()

    async def load(self, pks: list[int] | None) -> None:
        """Read the rows (all, or these pks) and apply what changed."""
        if pks == []:
            return
        started = time.monotonic()
        # Reading and parsing happen off the event loop, against a snapshot of
        # what runs; only the heap updates happen on it.
        known = dict(self.fingerprints)
        changes, seen = await sync_to_async(read_changes)(
            pks, known, self.backend.alias, self.now()
        )
        scope = {f"db:{pk}" for pk in pks} if pks is not None else set(known)
        changed = self.apply(changes, scope - seen)
        self.loaded.set()
        # Named: a change was announced, or a reconcile found a few (not the
        # start-up load of them all).
        if (pks is not None or known) and changed <= NAMED_MAX:
            log_reloads(changes, scope - seen)
        if pks is None and (changed or not self.jobs):
            logger.info(
                "schedules: %d running, %d changed, read in %.0f ms",
                len(self.jobs),
                changed,
                (time.monotonic() - started) * 1000,
            )

    def apply(self, changes: list[Change], gone: set[str]) -> int:
        timed = []
        for key, fingerprint, job in changes:
            self.fingerprints[key] = fingerprint
            if job is None or job.next_run is None:
                self.jobs.pop(key, None)
            else:
                self.jobs[key] = job
                timed.append((job, job.next_run))
        self.push_all(timed)
        for key in gone:
            self.remove(key)
        return len(changes) + len(gone)

    async def listening(self) -> None:
        """Reload rows as their changes are published; all of them after a gap."""
        pubsub = self.pool.pubsub()
        lost = False
        while True:
            try:
                if not pubsub.subscribed:
                    await pubsub.subscribe(SCHEDULES_CHANNEL)
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=MAX_SLEEP
                )
            except (RedisError, OSError):
                lost = True  # messages published meanwhile are gone
                await asyncio.sleep(MAX_SLEEP)
                continue
            if lost:
                lost, self.full_reload = False, True
                self.reload.set()
            if message is not None:
                self.on_message(message["data"])

    def on_message(self, data: bytes) -> None:
        text = data.decode(errors="replace")
        if text == "*":
            self.full_reload = True
        else:
            self.changed.update(int(pk) for pk in text.split(",") if pk.isdigit())
        self.reload.set()
