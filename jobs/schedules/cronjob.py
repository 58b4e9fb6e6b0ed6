"""A schedule as an arq CronJob whose next run comes from its entry.

arq's CronJob computes runs from its calendar fields; here they stay None and
`calculate_next()` asks the schedule's timing (jobs.schedules.timing), which
knows cron expressions in any zone, intervals and clocked times. `jobs_worker`'s
scheduler keeps them in its heap (their coroutine is never called); arq's own
worker runs them as its `cron_jobs` (jobs.schedules.arqcron sets the coroutine).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.cron import CronJob

from jobs.schedules.entries import Entry

logger = logging.getLogger("jobs.scheduler")

TOLERANCE = timedelta(seconds=60)  # a run later than this was missed (policy skip)


async def _placeholder(ctx: dict[Any, Any]) -> None:
    """arq's CronJob names a coroutine; ours enqueue Django tasks instead."""


@dataclass(eq=False)
class ScheduleCronJob(CronJob):
    """An arq CronJob whose next run comes from a schedule (jobs.schedules.timing)."""

    entry: Entry = field(kw_only=True)
    seq: int = field(default=0, kw_only=True)  # its current place in the heap

    @classmethod
    def of(cls, entry: Entry) -> ScheduleCronJob:
        # arq's calendar fields stay None: calculate_next() asks the entry.
        return cls(
            name=entry.key,
            coroutine=_placeholder,
            month=None,
            day=None,
            weekday=None,
            hour=None,
            minute=None,
            second=None,
            microsecond=0,
            run_at_startup=False,
            unique=True,
            job_id=None,
            timeout_s=None,
            keep_result_s=None,
            keep_result_forever=None,
            max_tries=None,
            entry=entry,
        )

    def calculate_next(self, prev_run: datetime) -> None:
        self.next_run = self.entry.next_run(prev_run)

    def resume(self, now: datetime) -> None:
        """Set the first run after what is already done (its last run or
        change), or after a TOLERANCE ago for a new schedule."""
        since = self.entry.since
        if since is not None and since > now + TOLERANCE:
            # Taken at its word, it would stall the schedule until then while
            # the admin lists its next runs as due: say so, and go by now.
            logger.warning(
                "schedule %r: its last run or change, %s, is %s in the future "
                "(USE_TZ or TIME_ZONE changed on an existing database? a clock "
                "step?); running it from now, by its missed-run policy",
                self.entry.name,
                since.isoformat(),
                since - now,
            )
            since = None
        self.calculate_next(since or now - TOLERANCE)


def last_tick(job_id: bytes | None) -> datetime | None:
    """The run time in a schedule's last job id (`...:<ms>`)."""
    if not job_id:
        return None
    ms = job_id.decode().rsplit(":", 1)[-1]
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms.isdigit() else None
