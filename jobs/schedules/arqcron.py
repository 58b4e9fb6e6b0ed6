"""The schedules as arq's own `cron_jobs`, for `arq jobs.arq.WorkerSettings`.

Read once, when the worker starts: every enabled `Schedule` row and every
JOBS_SCHEDULES item of the backend becomes a `ScheduleCronJob` (its next run
from jobs.schedules.timing: cron in any zone, intervals, clocked times), run by
arq's cron loop. arq enqueues a tick job named after the schedule; running it
enqueues the schedule's task under the id `jobs_worker`'s scheduler would use
(`schedule:<pk>:<run ms>`), so a run is enqueued once whichever worker fires
it, and records the last run as `jobs_worker` does.

What arq's cron does not have, and `jobs_worker` does: live reload (a changed
row waits for the next start), missed runs (arq fires what falls due while it
runs; nothing is caught up after a stop), and a heap (arq looks at every
schedule each poll).
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs import conf, registry
from jobs.schedules import static
from jobs.schedules.cronjob import ScheduleCronJob, last_tick
from jobs.schedules.entries import Entry
from jobs.schedules.scheduler import Scheduler
from jobs.schedules.sources import read_changes

if TYPE_CHECKING:
    from jobs.backend import JobsBackend

logger = logging.getLogger("jobs.scheduler")


def cron_jobs(backend: JobsBackend) -> list[ScheduleCronJob]:
    """arq cron jobs for the schedules of `backend`, read now."""
    now = datetime.now(UTC)
    changes, _ = read_changes(None, {}, backend.alias, now)
    found = [job.entry for _, _, job in changes if job is not None]
    entries, problems = static.static_entries(conf.jobs_settings.SCHEDULES)
    for name, problem in problems:
        logger.error("JOBS_SCHEDULES[%r] skipped: %s", name, problem)
    found += [e for e in entries if registry.get(e.task).backend == backend.alias]
    return [cron_job(entry, backend) for entry in found]


def cron_job(entry: Entry, backend: JobsBackend) -> ScheduleCronJob:
    job = ScheduleCronJob.of(entry)
    job.coroutine = functools.partial(fire, entry, backend)  # type: ignore[assignment]
    job.next_run = None  # arq computes it from its own clock at its first tick
    return job


async def fire(entry: Entry, backend: JobsBackend, ctx: dict[str, Any]) -> str:
    """arq's tick of `entry`: enqueue its run of the tick's time, record it."""
    tick = last_tick(ctx["job_id"].encode())
    if tick is None:
        return "no tick"
    scheduler = Scheduler()
    scheduler.attach(backend, ctx["redis"])
    outcome = await scheduler.fire(entry, tick)
    await scheduler.writer.flush()
    return outcome
