"""Rate limits, applied by the worker before a job starts (see jobs.redis.limits).

A claimed job of a rate-limited task asks Redis for its turn; if its turn is
later, it goes back to its queue due then, without counting as an attempt, and
its slot is free at once. Tasks without a limit cost a dict lookup.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.tasks.exceptions import InvalidTask

from jobs import registry
from jobs.conf import jobs_settings
from jobs.exceptions import WorkerError
from jobs.redis import scripts
from jobs.redis.limits import RATE, TOLERANCE, TURNS_KEPT, rate_keys
from jobs.redis.scripts import now_ms
from jobs.task import rate_interval

if TYPE_CHECKING:
    from jobs.worker.execution import Claimed
    from jobs.worker.loop import JobsWorker

logger = logging.getLogger("jobs.worker")


def intervals() -> dict[str, float]:
    """ms between starts, by task path, for every rate-limited task: the tasks'
    `rate_limit` under JOBS_RATE_LIMITS. WorkerError for a bad setting."""
    limits: dict[str, str | None] = {
        path: task.rate_limit
        for path, task in registry.all_tasks().items()
        if task.rate_limit is not None
    }
    limits.update(jobs_settings.RATE_LIMITS)
    try:
        return {
            path: rate_interval(rate)
            for path, rate in limits.items()
            if rate is not None
        }
    except InvalidTask as e:
        raise WorkerError(f"JOBS_RATE_LIMITS: {e}") from None


class RateLimits:
    """Gives each claimed job of a rate-limited task its turn, for one worker."""

    def __init__(self, worker: JobsWorker) -> None:
        self.worker = worker
        self.intervals = intervals()

    async def deferred(self, claimed: Claimed) -> bool:
        """Whether the job's turn is later: then it is back in its queue, due
        at its turn, and must not run now."""
        job = claimed.job
        if job is None or claimed.attempt <= 0:
            return False
        interval = self.intervals.get(job.task_path)
        if interval is None:
            return False
        args = [interval, claimed.id, TURNS_KEPT, TOLERANCE]
        turn = await RATE.acall(self.worker.wire, rate_keys(job.task_path), args)
        if not turn:
            return False
        recorder = self.worker.recorder
        recorder.releasing.add(claimed.id)  # the heartbeat leaves its lease alone
        keys = [claimed.queue_key, recorder.wake_key_of(claimed), ""]
        # 'release': waiting for its turn is not an attempt.
        await self.worker.batcher.script(
            scripts.RETRY, keys, [claimed.id, int(turn), "", 0, "release"]
        )
        logger.debug("job %s waits %d ms for its turn", claimed.id, turn - now_ms())
        return True
