"""The worker's heartbeat: leases renewed, the worker described, housekeeping.

Every LEASE / 3 seconds: renew the leases of running jobs (a worker that stops
beating loses them within one LEASE and its jobs run elsewhere), catch missed
cancels, check memory, describe this worker in `jobs:workers`, flush metrics,
write arq's health-check key, trim the finished-jobs index and tidy the
thread-sensitive database connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from redis.exceptions import RedisError

from jobs.redis import scripts
from jobs.redis.keys import RECENT_KEY, RECENT_MAX, WORKER_KEY_PREFIX, WORKERS_KEY
from jobs.redis.scripts import now_ms

if TYPE_CHECKING:
    from jobs.worker.loop import JobsWorker

logger = logging.getLogger("jobs.worker")

WORKER_TTL_BEATS = 3  # a worker is presumed dead after this many missed heartbeats
PRUNE_MAX = 100  # dead workers' entries looked at per heartbeat


class Heartbeat:
    """One worker's periodic upkeep (see the module docstring)."""

    def __init__(self, worker: JobsWorker) -> None:
        self.worker = worker

    async def run(self) -> None:
        interval = self.worker.config.lease / 3
        while True:
            try:
                await self.beat()
            except (RedisError, OSError) as e:
                logger.debug("heartbeat failed: %s", e)
            await asyncio.sleep(interval)

    async def beat(self) -> None:
        await self.renew_leases(now_ms())
        await self.worker.canceller.sweep()
        self.check_memory()
        await self.register()
        await self.worker.metrics.flush(self.worker.pool)
        await self.worker.record_health()
        await self.trim_recent()
        await self.prune_workers()
        # Async tasks use the ORM through Django's one thread-sensitive thread;
        # tidy its connections as a request's end would.
        await sync_to_async(close_old_connections)()

    def check_memory(self) -> None:
        if self.worker.max_memory is None or self.worker.stopping:
            return
        import psutil

        rss = psutil.Process().memory_info().rss
        if rss > self.worker.max_memory:
            logger.warning(
                "memory %d MB is over the %d MB ceiling: draining, to be replaced",
                rss >> 20,
                self.worker.max_memory >> 20,
            )
            self.worker.stop()

    async def renew_leases(self, now: int) -> None:
        if not self.worker.running:
            return
        # Through the batcher, behind the writes already queued: a job whose
        # FINISH or RETRY is among them is left out (its lease is ending), and
        # one written later lands after the renewal. So a lease reported lost
        # is one another worker took, or Redis forgot.
        releasing = self.worker.recorder.releasing
        args: list[Any] = [self.worker.worker_id, self.worker.config.lease_ms, now]
        for claimed, _ in self.worker.running.values():
            if claimed.id not in releasing:
                args += [claimed.queue_key, claimed.id]
        if len(args) == 3:
            return
        lost = await self.worker.batcher.script(scripts.RENEW, [], args)
        for job_id in lost:
            logger.warning(
                "lost the lease of job %s (Redis restarted or slow heartbeat)",
                job_id.decode(),
            )

    async def trim_recent(self) -> None:
        """Keep the finished-jobs index as long as results, RECENT_MAX at most."""
        oldest = now_ms() - self.worker.backend.results.ttl * 1000
        await scripts.TRIM_RECENT.acall(
            self.worker.wire, [RECENT_KEY], [oldest, RECENT_MAX]
        )

    async def prune_workers(self) -> None:
        """Forget dead workers, whose descriptions have expired (see register())."""
        stale = now_ms() - self.description_ttl * 1000
        await scripts.PRUNE_WORKERS.acall(
            self.worker.wire, [WORKERS_KEY], [stale, PRUNE_MAX]
        )

    @property
    def description_ttl(self) -> int:
        """Seconds this worker's description outlives its last heartbeat."""
        return int(self.worker.config.lease * WORKER_TTL_BEATS / 3) + 1

    async def register(self) -> None:
        key = WORKER_KEY_PREFIX + self.worker.worker_id
        ttl = self.description_ttl
        async with self.worker.pool.pipeline(transaction=False) as pipe:
            pipe.zadd(WORKERS_KEY, {self.worker.worker_id: now_ms()})
            pipe.hset(
                key,
                mapping={
                    "queues": ",".join(self.worker.queues),
                    "concurrency": self.worker.max_jobs,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "running": len(self.worker.running),
                    "jobs": ",".join(list(self.worker.running)[:100]),
                    "started": self.worker.started_at,
                    "complete": self.worker.jobs_complete,
                    "failed": self.worker.jobs_failed,
                    "retried": self.worker.jobs_retried,
                },
            )
            pipe.expire(key, ttl)
            await pipe.execute()

    async def unregister(self) -> None:
        try:
            await self.worker.metrics.flush(self.worker.pool)
            async with self.worker.pool.pipeline(transaction=False) as pipe:
                pipe.zrem(WORKERS_KEY, self.worker.worker_id)
                pipe.delete(WORKER_KEY_PREFIX + self.worker.worker_id)
                await pipe.execute()
        except (RedisError, OSError):
            pass
