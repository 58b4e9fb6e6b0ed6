"""The worker: arq's Worker, consuming Django tasks with leases and push wake-ups.

arq's Worker brings the process shell: its event loop, signal wiring, health-check
key, `on_startup`/`on_shutdown` hooks and cron machinery. Its job loop is
replaced: arq polls every `poll_delay` and holds a job for its longest timeout
plus 10 s, so a dead worker's jobs wait minutes and an idle one answers late.
Here a claim takes a batch in one script with a short lease renewed by the
heartbeat, an idle worker blocks on a wake list, and SIGTERM drains instead of
cancelling.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from arq.worker import Function, Worker
from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.tasks.signals import task_finished
from redis.exceptions import RedisError

from jobs import registry
from jobs.conf import redact
from jobs.exceptions import JobCancelled, JobNotRunnable, JobsError, WorkerError
from jobs.logs import current_job
from jobs.records import Record
from jobs.redis import connections, scripts
from jobs.redis.batching import CommandBatcher
from jobs.redis.keys import (
    ABORT_KEY,
    CANCEL_CHANNEL,
    DONE_CHANNEL_PREFIX,
    QUEUE_KEY_PREFIX,
    RECENT_KEY,
    RECENT_MAX,
    WAKE_KEY_PREFIX,
    WORKER_KEY_PREFIX,
    WORKERS_KEY,
)
from jobs.redis.scripts import now_ms
from jobs.redis.wire import AsyncWire
from jobs.worker import running
from jobs.worker.execution import (
    NOT_RUNNABLE,
    Claimed,
    Outcome,
    Runtime,
    execute,
    failed_record,
)
from jobs.worker.metrics import JobMetrics

if TYPE_CHECKING:
    from jobs.backend import JobsBackend

logger = logging.getLogger("jobs.worker")

RETRY_KEY_TTL = 88_400  # seconds, as arq keeps its retry counters
REDIS_BACKOFF_MAX = 1.0  # seconds between attempts while Redis is away
WORKER_TTL_BEATS = 3  # a worker is presumed dead after this many missed heartbeats
SAFE_POLICIES = ("noeviction",)
# While jobs run, claims are this far apart at least: under load each finished
# job frees a slot, and a claim per job would cost more than the job itself.
# An idle worker claims the moment it is woken.
CLAIM_GAP = 0.002  # seconds


class Scheduler(Protocol):
    """Runs periodic work inside a worker (see jobs.schedules.scheduler)."""

    async def run(self, worker: JobsWorker) -> None:
        """Enqueue due work until cancelled; `worker.backend` enqueues."""


async def _placeholder(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
    """Stands in for a task in arq's function table; the worker calls execute()."""


def arq_functions() -> list[Function]:
    """The registered tasks, as arq Function entries (names, timeouts, tries)."""
    return [
        Function(
            name=path,
            coroutine=_placeholder,
            timeout_s=task.timeout,
            keep_result_s=None,
            keep_result_forever=None,
            max_tries=task.max_attempts,
        )
        for path, task in sorted(registry.all_tasks().items())
    ]


def run_seconds(outcome: Outcome) -> float | None:
    """How long the run took, from its result."""
    result = outcome.result
    if result is None or result.last_attempted_at is None:
        return None
    end = result.finished_at or datetime.now(UTC)
    return max((end - result.last_attempted_at).total_seconds(), 0.0)


class JobsWorker(Worker):
    """Run the jobs of one Django Tasks backend from one or more queues.

    backend: the JobsBackend whose jobs to run.
    queues: queue names, highest priority first (default: the backend's QUEUES).
    concurrency: jobs run at once; plain functions get as many threads.
    burst: stop once the queues are empty.
    grace: seconds SIGTERM waits for running jobs before handing them back.
    max_jobs_run: stop after starting this many jobs (for process recycling).
    max_memory: drain and stop when the process's RSS exceeds this many bytes.
    scheduler: runs beside the job loop (the periodic schedules), if given.
    """

    def __init__(
        self,
        backend: JobsBackend,
        *,
        queues: list[str] | None = None,
        concurrency: int = 10,
        burst: bool = False,
        grace: float = 30.0,
        max_jobs_run: int | None = None,
        max_memory: int | None = None,
        handle_signals: bool = True,
        cron_jobs: list[Any] | None = None,
        scheduler: Scheduler | None = None,
        on_startup: Any = None,
        on_shutdown: Any = None,
    ) -> None:
        if backend.config_error is not None:
            raise WorkerError(str(backend.config_error))
        self.backend = backend
        self.settings = backend.settings
        self.queues = list(queues or backend.queue_order)
        unknown = set(self.queues) - backend.queues
        if unknown:
            raise WorkerError(
                f"Queues {sorted(unknown)} are not in the backend's QUEUES "
                f"{sorted(backend.queues)}."
            )
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.grace = grace
        self.scheduler = scheduler
        self.max_jobs_run = max_jobs_run
        self.max_memory = max_memory
        self.queue_keys = [QUEUE_KEY_PREFIX + q for q in self.queues]
        self.wake_keys = [WAKE_KEY_PREFIX + q for q in self.queues]
        super().__init__(
            functions=arq_functions()
            or [Function("noop", _placeholder, None, None, None, None)],
            queue_name=self.queue_keys[0],
            cron_jobs=cron_jobs,
            burst=burst,
            max_jobs=concurrency,
            handle_signals=handle_signals,
            poll_delay=self.settings.poll_interval,
            health_check_interval=min(self.settings.lease / 3, 10),
            on_startup=on_startup,
            on_shutdown=on_shutdown,
        )
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="jobs-sync")
        self.runtime = Runtime(
            backend=backend,
            worker_id=self.worker_id,
            executor=self.executor,
            mark_running=self.write_running,
        )
        self.running: dict[str, tuple[Claimed, asyncio.Task[None]]] = {}
        self.slot_freed = asyncio.Event()
        self.uncancellable: set[str] = set()
        self.running_writer: running.RunningWriter | None = None
        self.metrics = JobMetrics()
        self.stopping = False
        self.started_jobs = 0
        self.started_at = int(time.time())
        self._wait_task: asyncio.Task[Any] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._redis_down_since: float | None = None
        self._next_claim = 0.0  # time.monotonic() of the earliest next claim

    # Lifecycle

    async def main(self) -> None:
        self._pool = connections.new_async_client(self.settings)
        self.wire = AsyncWire(self.pool.connection_pool)
        self.batcher = CommandBatcher(self.wire)
        self.runtime.batcher = self.batcher
        self.running_writer = running.RunningWriter(self.backend.results, self.batcher)
        await self.startup()
        beat = asyncio.create_task(self.heartbeat_loop(), name="jobs-heartbeat")
        self._background.append(beat)
        listener = asyncio.create_task(self.cancel_listener(), name="jobs-cancel")
        self._background.append(listener)
        if self.scheduler is not None:
            schedules = asyncio.create_task(
                self.scheduler.run(self), name="jobs-scheduler"
            )
            self._background.append(schedules)
        try:
            await self.consume()
            await self.drain()
        finally:
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            await self.unregister()

    async def startup(self) -> None:
        await self.wait_for_redis()
        await self.check_eviction_policy()
        logger.info(
            "worker %s consuming %s from %s with concurrency %d, %d tasks registered",
            self.worker_id,
            ",".join(self.queues),
            redact(self.settings.redis_url),
            self.max_jobs,
            len(registry.all_tasks()),
        )
        self.ctx["redis"] = self.pool
        try:
            await self.register()
        except RedisError as e:  # e.g. a full Redis: run anyway, to drain it
            logger.warning("could not register this worker: %s", e)
        if self.on_startup:
            await self.on_startup(self.ctx)

    async def wait_for_redis(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.pool.ping()
                return
            except (RedisError, OSError) as e:
                if time.monotonic() > deadline:
                    raise WorkerError(
                        f"Redis at {redact(self.settings.redis_url)} did not answer "
                        f"within {timeout:.0f} s: {e}"
                    ) from e
                logger.warning("waiting for Redis: %s", e)
                await asyncio.sleep(1)

    async def check_eviction_policy(self) -> None:
        try:
            policy = (await self.pool.config_get("maxmemory-policy")).get(
                "maxmemory-policy"
            )
        except RedisError:  # CONFIG may be disabled on managed Redis
            return
        if policy is None or policy in SAFE_POLICIES:
            return
        message = (
            f"Redis maxmemory-policy is {policy!r}: Redis may evict queued jobs when "
            "it fills up. Set maxmemory-policy noeviction."
        )
        if self.settings.strict_redis:
            raise WorkerError(message)
        logger.warning(message)

    def handle_sig(self, signum: signal.Signals) -> None:
        """First signal: stop taking jobs and drain. Second: hand back now."""
        if self.stopping:
            logger.warning(
                "second %s: handing running jobs back now", signal.Signals(signum).name
            )
            self.grace = 0
            self.slot_freed.set()
            return
        logger.info(
            "%s: no new jobs; waiting up to %.0f s for %d running",
            signal.Signals(signum).name,
            self.grace,
            len(self.running),
        )
        self.stop()

    handle_sig_wait_for_completion = handle_sig

    def stop(self) -> None:
        self.stopping = True
        self.slot_freed.set()
        if self._wait_task is not None:
            self._wait_task.cancel()

    async def drain(self) -> None:
        """Let running jobs finish within the grace period, then hand the rest back."""
        deadline = time.monotonic() + self.grace
        while self.running and time.monotonic() < deadline:
            self.slot_freed.clear()
            try:
                await asyncio.wait_for(
                    self.slot_freed.wait(), deadline - time.monotonic()
                )
            except TimeoutError:
                break
        left = list(self.running.values())
        for _, task in left:
            task.cancel()
        await asyncio.gather(*(task for _, task in left), return_exceptions=True)

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            if self.running_writer is not None:
                self.running_writer.close()
            await self.batcher.close()
            await self.wire.aclose()
            await self.pool.delete(self.health_check_key)
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
            await self.pool.aclose(close_connection_pool=True)
            self._pool = None
        await connections.aclose_all()

    # Consuming

    async def consume(self) -> None:
        while not self.stopping:
            free = self.max_jobs - len(self.running)
            if self.max_jobs_run is not None:
                free = min(free, self.max_jobs_run - self.started_jobs)
                if free <= 0 and not self.running:
                    return
            if free <= 0:
                self.slot_freed.clear()
                await self.slot_freed.wait()
                continue
            if self.running and (gap := self._next_claim - time.monotonic()) > 0:
                await asyncio.sleep(gap)  # more slots free up meanwhile
                continue
            try:
                claimed, earliest = await self.claim(free)
                self.redis_back()
            except (RedisError, OSError) as e:
                await self.redis_away(e)
                continue
            for job in claimed:
                self.start(job)
            if len(claimed) == free:
                continue
            if self.burst and earliest is None and not self.running:
                return
            await self.wait_for_work(earliest)

    async def claim(self, count: int) -> tuple[list[Claimed], int | None]:
        self._next_claim = time.monotonic() + CLAIM_GAP
        keys = [*self.queue_keys, *self.wake_keys]
        args = [now_ms(), self.settings.lease_ms, count, self.worker_id, RETRY_KEY_TTL]
        rows, earliest = await scripts.CLAIM.acall(self.wire, keys, args)
        claimed = [
            Claimed.decoded(
                row[0].decode(), row[1], int(row[2]), self.queue_keys[int(row[3]) - 1]
            )
            for row in rows
        ]
        return claimed, None if earliest is None else int(earliest)

    async def wait_for_work(self, earliest: int | None) -> None:
        """Block until a wake token, the next due job, or the safety poll."""
        timeout = self.settings.poll_interval
        if earliest is not None:
            timeout = min(timeout, max(earliest - now_ms(), 0) / 1000)
        if timeout < 0.001:
            return
        blpop = self.pool.blpop(self.wake_keys, timeout=timeout)  # type: ignore[arg-type]
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(blpop)]  # type: ignore[arg-type]
        self._wait_task = waits[0]  # type: ignore[assignment]
        if self.burst and self.running:
            self.slot_freed.clear()
            waits.append(asyncio.ensure_future(self.slot_freed.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._wait_task = None
            for w in waits:
                w.cancel()
            for w in waits:
                if w.done() and not w.cancelled() and w.exception() is not None:
                    await self.redis_away(w.exception())  # type: ignore[arg-type]

    async def redis_away(self, error: BaseException) -> None:
        now = time.monotonic()
        if self._redis_down_since is None:
            self._redis_down_since = now
            logger.error("Redis unavailable (%s); retrying", error)
        await asyncio.sleep(
            min(REDIS_BACKOFF_MAX, 0.05 + (now - self._redis_down_since) / 4)
        )

    def redis_back(self) -> None:
        if self._redis_down_since is not None:
            logger.warning(
                "Redis is back after %.1f s", time.monotonic() - self._redis_down_since
            )
            self._redis_down_since = None

    def start(self, claimed: Claimed) -> None:
        self.started_jobs += 1
        task = asyncio.create_task(self.run_claimed(claimed), name=f"job-{claimed.id}")
        self.running[claimed.id] = (claimed, task)
        task.add_done_callback(lambda _: self.job_done(claimed.id))

    def job_done(self, job_id: str) -> None:
        self.running.pop(job_id, None)
        self.uncancellable.discard(job_id)
        self.slot_freed.set()

    # One job

    async def run_claimed(self, claimed: Claimed) -> None:
        current_job.set((claimed.id, claimed.task_path))
        try:
            outcome = await self.outcome_of(claimed)
        except asyncio.CancelledError:
            await asyncio.shield(self.hand_back(claimed))
            raise
        await asyncio.shield(self.persist(claimed, outcome))

    async def outcome_of(self, claimed: Claimed) -> Outcome:
        if claimed.attempt <= 0:
            reason = "expired before a worker ran it"
            error: Exception = JobNotRunnable(f"The job {reason}.")
            if claimed.attempt < 0:
                error = JobCancelled("The job was cancelled before it ran.")
            return await self.not_runnable(claimed, error)
        try:
            return await execute(self.runtime, claimed)
        except NOT_RUNNABLE as e:
            logger.error("job %s cannot run: %s", claimed.id, e)
            return await self.not_runnable(claimed, e)

    async def not_runnable(self, claimed: Claimed, error: BaseException) -> Outcome:
        try:
            previous = await self.backend.results.aget(claimed.id)
        except Exception:  # a garbage record must not stop us recording the failure
            previous = None
        return Outcome(failed_record(self.runtime, claimed, error, previous))

    async def write_running(self, record: Record) -> None:
        """Record RUNNING, only if the job is still running after RUNNING_AFTER
        (see jobs.worker.running); a full or absent Redis does not stop the job."""
        assert self.running_writer is not None
        self.running_writer.add(record)

    async def persist(self, claimed: Claimed, outcome: Outcome) -> None:
        """Write the outcome, retrying while Redis is away (the lease may lapse)."""
        await self._skip_running(claimed.id)
        while True:
            try:
                await self.write_outcome(claimed, outcome)
                self.redis_back()
                break
            except (RedisError, OSError) as e:
                await self.redis_away(e)
        status = outcome.record["status"]
        self.metrics.observe(
            outcome.record.get("task") or "-",
            "RETRIED" if outcome.retry_at_ms is not None else status,
            run_seconds(outcome),
        )
        if outcome.retry_at_ms is not None:
            self.jobs_retried += 1
        elif status == "SUCCESSFUL":
            self.jobs_complete += 1
        else:
            self.jobs_failed += 1
        if outcome.result is not None:
            task_finished.send(type(self.backend), task_result=outcome.result)

    async def write_outcome(self, claimed: Claimed, outcome: Outcome) -> None:
        store = self.backend.results
        await store.astore_outside(outcome.record)
        result_key, record = store.script_args(outcome.record)
        ttl_ms = store.ttl_ms
        if outcome.retry_at_ms is not None:
            keys = [claimed.queue_key, self.wake_key_of(claimed), result_key]
            args = [claimed.id, outcome.retry_at_ms, record, ttl_ms, ""]
            await self.batcher.script(scripts.RETRY, keys, args)
            return
        owned = await self.batcher.script(
            scripts.FINISH,
            [claimed.queue_key, result_key],
            [claimed.id, self.worker_id, record, ttl_ms, now_ms()],
        )
        if not owned:
            logger.warning(
                "job %s finished here after its lease passed to another worker",
                claimed.id,
            )

    async def _skip_running(self, job_id: str) -> None:
        """Drop the job's RUNNING record unless written; wait if being written."""
        if self.running_writer is not None:
            writing = self.running_writer.discard(job_id)
            if writing is not None:
                await asyncio.wait([writing])

    def wake_key_of(self, claimed: Claimed) -> str:
        return str(self.wake_keys[self.queue_keys.index(claimed.queue_key)])

    async def hand_back(self, claimed: Claimed) -> None:
        """Requeue a job cut short by shutdown; it does not count as an attempt."""
        await self._skip_running(claimed.id)
        try:
            keys = [claimed.queue_key, self.wake_key_of(claimed), ""]
            args = [claimed.id, now_ms(), "", 0, "release"]
            await self.batcher.script(scripts.RETRY, keys, args)
            record = await self.backend.results.aget(claimed.id)
            if record is not None and record["status"] == "RUNNING":
                record["status"] = "READY"
                await self.backend.results.aset(record)
            logger.warning("job %s handed back to the queue", claimed.id)
        except (RedisError, OSError) as e:
            logger.error(
                "could not hand job %s back (%s); its lease will expire", claimed.id, e
            )

    # Heartbeat: leases, registry, health, DB hygiene

    async def heartbeat_loop(self) -> None:
        interval = self.settings.lease / 3
        while True:
            try:
                await self.heartbeat()
            except (RedisError, OSError) as e:
                logger.debug("heartbeat failed: %s", e)
            await asyncio.sleep(interval)

    async def heartbeat(self) -> None:
        await self.renew_leases(now_ms())
        await self.sweep_cancels()
        self.check_memory()
        await self.register()
        await self.metrics.flush(self.pool)
        await self.record_health()
        await self.trim_recent()
        # Async tasks use the ORM through Django's one thread-sensitive thread;
        # tidy its connections as a request's end would.
        await sync_to_async(close_old_connections)()

    # Cancelling running jobs

    async def cancel_listener(self) -> None:
        """Cancel running coroutines as `backend.cancel()` asks, at once."""
        pubsub = self.pool.pubsub()
        while True:
            try:
                if not pubsub.subscribed:
                    await pubsub.subscribe(CANCEL_CHANNEL)
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self.settings.poll_interval
                )
                if message is not None:
                    self.cancel_running(message["data"].decode())
            except (RedisError, OSError):
                await asyncio.sleep(REDIS_BACKOFF_MAX)  # the heartbeat sweeps meanwhile

    async def sweep_cancels(self) -> None:
        """Catch cancels whose message was missed (arq's abort set)."""
        if not self.running:
            return
        for job_id in await self.pool.zrange(ABORT_KEY, 0, -1):
            self.cancel_running(job_id.decode())

    def cancel_running(self, job_id: str) -> None:
        entry = self.running.get(job_id)
        if entry is None or job_id in self.runtime.cancelling:
            return
        claimed, task = entry
        try:
            func = registry.get(claimed.task_path).func
        except JobsError:
            return
        if not inspect.iscoroutinefunction(func):
            if job_id not in self.uncancellable:
                self.uncancellable.add(job_id)
                logger.warning(
                    "job %s is a plain function: it cannot be cancelled", job_id
                )
            return
        logger.info("cancelling job %s", job_id)
        self.runtime.cancelling.add(job_id)
        task.cancel()

    def check_memory(self) -> None:
        if self.max_memory is None or self.stopping:
            return
        import psutil

        rss = psutil.Process().memory_info().rss
        if rss > self.max_memory:
            logger.warning(
                "memory %d MB is over the %d MB ceiling: draining, to be replaced",
                rss >> 20,
                self.max_memory >> 20,
            )
            self.stop()

    async def renew_leases(self, now: int) -> None:
        if not self.running:
            return
        args: list[Any] = [self.worker_id, self.settings.lease_ms, now]
        for claimed, _ in self.running.values():
            args += [claimed.queue_key, claimed.id]
        lost = await scripts.RENEW.acall(self.wire, [], args)
        for job_id in lost:
            logger.warning(
                "lost the lease of job %s (Redis restarted or slow heartbeat)",
                job_id.decode(),
            )

    async def trim_recent(self) -> None:
        """Keep the finished-jobs index as long as results, RECENT_MAX at most."""
        oldest = now_ms() - self.backend.results.ttl * 1000
        await scripts.TRIM_RECENT.acall(self.wire, [RECENT_KEY], [oldest, RECENT_MAX])

    async def register(self) -> None:
        key = WORKER_KEY_PREFIX + self.worker_id
        ttl = int(self.settings.lease * WORKER_TTL_BEATS / 3) + 1
        async with self.pool.pipeline(transaction=False) as pipe:
            pipe.zadd(WORKERS_KEY, {self.worker_id: now_ms()})
            pipe.hset(
                key,
                mapping={
                    "queues": ",".join(self.queues),
                    "concurrency": self.max_jobs,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "running": len(self.running),
                    "jobs": ",".join(list(self.running)[:100]),
                    "started": self.started_at,
                    "complete": self.jobs_complete,
                    "failed": self.jobs_failed,
                    "retried": self.jobs_retried,
                },
            )
            pipe.expire(key, ttl)
            await pipe.execute()

    async def unregister(self) -> None:
        try:
            await self.metrics.flush(self.pool)
            async with self.pool.pipeline(transaction=False) as pipe:
                pipe.zrem(WORKERS_KEY, self.worker_id)
                pipe.delete(WORKER_KEY_PREFIX + self.worker_id)
                await pipe.execute()
        except (RedisError, OSError):
            pass


__all__ = ["DONE_CHANNEL_PREFIX", "JobsWorker"]
