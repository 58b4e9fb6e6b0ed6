"""Cancelling running jobs: `backend.cancel()` publishes the id on a channel
every worker listens to, and adds it to arq's abort set, which the heartbeat
sweeps in case the message was missed. Only coroutines can be stopped mid-run.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from jobs import registry
from jobs.exceptions import JobsError
from jobs.redis.keys import ABORT_KEY, CANCEL_CHANNEL

if TYPE_CHECKING:
    from jobs.worker.loop import JobsWorker

logger = logging.getLogger("jobs.worker")

RETRY_EVERY = 1.0  # seconds between attempts to listen while Redis is away


class Canceller:
    """Cancel this worker's running coroutines when asked."""

    def __init__(self, worker: JobsWorker) -> None:
        self.worker = worker
        self.uncancellable: set[str] = set()  # plain functions already warned of

    async def listen(self) -> None:
        """Cancel running coroutines as `backend.cancel()` asks, at once."""
        pubsub = self.worker.pool.pubsub()
        while True:
            try:
                if not pubsub.subscribed:
                    await pubsub.subscribe(CANCEL_CHANNEL)
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True,
                    timeout=self.worker.config.poll_interval,
                )
                if message is not None:
                    self.cancel_running(message["data"].decode())
            except (RedisError, OSError):
                await asyncio.sleep(RETRY_EVERY)  # the heartbeat sweeps meanwhile

    async def sweep(self) -> None:
        """Catch cancels whose message was missed (arq's abort set)."""
        if not self.worker.running:
            return
        for job_id in await self.worker.pool.zrange(ABORT_KEY, 0, -1):
            self.cancel_running(job_id.decode())

    def cancel_running(self, job_id: str) -> None:
        entry = self.worker.running.get(job_id)
        if entry is None or job_id in self.worker.runtime.cancelling:
            return
        claimed, task = entry
        try:
            task_ = registry.get(claimed.task_path)
        except JobsError:
            return
        # A plain function in a child process (--pool processes) can be stopped.
        in_child = self.worker.runtime.processes is not None and not task_.takes_context
        if not inspect.iscoroutinefunction(task_.func) and not in_child:
            if job_id not in self.uncancellable:
                self.uncancellable.add(job_id)
                logger.warning(
                    "job %s is a plain function: it cannot be cancelled", job_id
                )
            return
        logger.info("cancelling job %s", job_id)
        self.worker.runtime.cancelling.add(job_id)
        task.cancel()
