"""The worker: arq's Worker, consuming Django tasks with leases and push wake-ups.

arq's Worker class brings the process shell only: its constructor, `run()`
(the event loop), signal wiring and health-check key (8 of arq's functions run:
docs/arq.md). `main()` is replaced, so arq's job loop, `run_job`, `finish_job`
and cron never run here: arq polls every `poll_delay` and holds a job for its
longest timeout plus 10 s, so a dead worker's jobs wait minutes and an idle one
answers late.
Here a claim takes a batch in one script with a short lease renewed by the
heartbeat, an idle worker blocks on a wake list, and SIGTERM drains instead of
cancelling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from arq.worker import Worker
from redis.exceptions import RedisError

from jobs import registry
from jobs.conf import jobs_settings, redact
from jobs.logs import current_job
from jobs.redis import connections
from jobs.redis.batching import CommandBatcher
from jobs.redis.keys import DONE_CHANNEL_PREFIX
from jobs.redis.wire import AsyncWire
from jobs.signals import send, worker_ready, worker_stopping
from jobs.worker import startup
from jobs.worker.cancelling import Canceller
from jobs.worker.claiming import Claimer
from jobs.worker.execution import Claimed, Runtime
from jobs.worker.heartbeat import Heartbeat
from jobs.worker.hooks import run_hooked
from jobs.worker.limits import RateLimits
from jobs.worker.metrics import JobMetrics
from jobs.worker.outcomes import Recorder
from jobs.worker.processes import Processes
from jobs.worker.threads import Threads
from jobs.worker.watchdog import Watchdog

if TYPE_CHECKING:
    from jobs.backend import JobsBackend

logger = logging.getLogger("jobs.worker")

REDIS_BACKOFF_MAX = 1.0  # seconds between attempts while Redis is away


class Scheduler(Protocol):
    """Runs periodic work inside a worker (see jobs.schedules.scheduler)."""

    async def run(self, worker: JobsWorker) -> None:
        """Enqueue due work until cancelled; `worker.backend` enqueues."""


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
    redis_wait: seconds to wait for Redis at start-up (None: for ever).
    pool: "threads" (plain functions in threads) or "processes" (in child
        processes, killed past their timeout: see jobs.worker.processes); with
        "processes", max_jobs_run and max_memory recycle each child, not the worker.
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
        redis_wait: float | None = None,
        pool: str = "threads",
        supervised: bool = False,
    ) -> None:
        self.backend = backend
        self.redis_wait = redis_wait
        self.starting = True  # until Redis answered: a signal stops at once
        self.config = backend.config
        self.queues = startup.checked_queues(backend, queues)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.grace = grace
        self.scheduler = scheduler
        self.pool_limits = (max_jobs_run, max_memory)
        if pool == "processes":  # the pool's children take these limits
            max_jobs_run = max_memory = None
        self.max_jobs_run = max_jobs_run
        self.max_memory = max_memory
        self.claimer = Claimer(self)
        hooks = jobs_settings.WORKER_HOOKS
        super().__init__(
            functions=startup.arq_functions(),
            queue_name=self.claimer.queue_keys[0],
            cron_jobs=cron_jobs,
            burst=burst,
            max_jobs=concurrency,
            handle_signals=handle_signals,
            poll_delay=self.config.poll_interval,
            health_check_interval=min(self.config.lease / 3, 10),
            on_startup=on_startup or hooks.get("on_startup"),
            on_shutdown=on_shutdown or hooks.get("on_shutdown"),
            on_job_start=hooks.get("on_job_start"),
            on_job_end=hooks.get("on_job_end"),
        )
        if supervised and handle_signals:
            self.leave_sigint_to_the_supervisor()
        self.unhooked = self.on_job_start is None and self.on_job_end is None
        self.running: dict[str, tuple[Claimed, asyncio.Task[None]]] = {}
        self.slot_freed = asyncio.Event()
        self.assemble(concurrency, handle_signals, pool)
        self.stopping = False
        self.started_jobs = 0
        self.started_at = int(time.time())
        self._background: list[asyncio.Task[None]] = []
        self._redis_down_since: float | None = None

    def leave_sigint_to_the_supervisor(self) -> None:
        """The supervisor (-p N) forwards each stop as SIGTERM. A terminal's
        Ctrl-C reaches the whole process group: counted here too, it was a
        second signal, and running jobs were handed back without their grace."""
        self.loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def assemble(self, concurrency: int, handle_signals: bool, pool: str) -> None:
        """The worker's parts: its threads, its runtime, and what runs beside."""
        self.threads = Threads(concurrency, on_freed=self.slot_freed.set)
        self.runtime = Runtime(
            backend=self.backend,
            worker_id=self.worker_id,
            threads=self.threads,
            records_interrupts=handle_signals,
            processes=(
                Processes(concurrency, *self.pool_limits)
                if pool == "processes"
                else None
            ),
        )
        self.heartbeat = Heartbeat(self)
        self.canceller = Canceller(self)
        self.rate_limits = RateLimits(self)  # WorkerError for a bad limit
        self.metrics = JobMetrics()

    # Lifecycle

    async def main(self) -> None:
        self.connect()
        await self.startup()
        beat = asyncio.create_task(self.heartbeat.run(), name="jobs-heartbeat")
        self._background.append(beat)
        listener = asyncio.create_task(self.canceller.listen(), name="jobs-cancel")
        self._background.append(listener)
        watchdog = asyncio.create_task(Watchdog(self).run(), name="jobs-watchdog")
        self._background.append(watchdog)
        if self.scheduler is not None:
            schedules = asyncio.create_task(
                self.scheduler.run(self), name="jobs-scheduler"
            )
            self._background.append(schedules)
        try:
            await self.consume()
            send(worker_stopping, type(self), worker=self)
            await self.drain()
        finally:
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            await self.heartbeat.unregister()

    def connect(self) -> None:
        """Open the worker's client, its wire and the batcher of its writes."""
        self._pool = connections.new_async_client(self.config)
        self.wire = AsyncWire(self.pool.connection_pool)
        self.batcher = CommandBatcher(self.wire)
        self.runtime.batcher = self.batcher
        self.recorder = Recorder(self)
        self.runtime.mark_running = self.recorder.write_running

    async def startup(self) -> None:
        await startup.wait_for_redis(self.pool, self.config, self.redis_wait)
        self.starting = False
        await startup.refuse_cluster(self.pool, self.config)
        await startup.check_eviction_policy(self.pool, self.config)
        logger.info(
            "worker %s consuming %s from %s with concurrency %d, %d tasks registered",
            self.worker_id,
            ",".join(self.queues),
            redact(self.config.redis_url),
            self.max_jobs,
            len(registry.all_tasks()),
        )
        self.ctx["redis"] = self.pool
        if self.runtime.processes is not None:
            await self.runtime.processes.start()
        try:
            await self.heartbeat.register()
        except RedisError as e:  # e.g. a full Redis: run anyway, to drain it
            logger.warning("could not register this worker: %s", e)
        if self.on_startup:
            await self.on_startup(self.ctx)
        send(worker_ready, type(self), worker=self)

    def handle_sig(self, signum: signal.Signals) -> None:
        """First signal: stop taking jobs and drain. Second: hand back now."""
        if self.starting:  # nothing runs yet: nothing to drain
            logger.info("%s: stopping", signal.Signals(signum).name)
            self.stopping = True
            if self.main_task is not None:
                self.main_task.cancel()
            return
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
        if self.claimer.wait_task is not None:
            self.claimer.wait_task.cancel()

    async def drain(self) -> None:
        """Let running jobs finish within the grace period, then hand the rest back."""
        started = time.monotonic()
        # The deadline is read at each wake-up: a second signal sets grace to 0.
        while self.running and time.monotonic() < started + self.grace:
            self.slot_freed.clear()
            try:
                await asyncio.wait_for(
                    self.slot_freed.wait(), started + self.grace - time.monotonic()
                )
            except TimeoutError:
                break
        left = list(self.running.values())
        for _, task in left:
            task.cancel()
        await asyncio.gather(*(task for _, task in left), return_exceptions=True)

    async def close(self) -> None:
        self.threads.shutdown()
        if self.runtime.processes is not None:
            self.runtime.processes.shutdown()
        if self._pool is not None:
            self.recorder.running_writer.close()
            await self.batcher.close()
            await self.wire.aclose()
            if not self.starting:
                await self.forget_health_check()
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
            await self.pool.aclose(close_connection_pool=True)
            self._pool = None
        await connections.aclose_all()

    async def forget_health_check(self) -> None:
        try:
            await self.pool.delete(self.health_check_key)
        except (RedisError, OSError) as e:  # Redis is away: the key expires
            logger.info("stopped without Redis (%s)", e)

    # Consuming

    async def consume(self) -> None:
        while not self.stopping:
            free = self.max_jobs - len(self.running)
            free -= self.threads.excess(self.running)
            if self.max_jobs_run is not None:
                free = min(free, self.max_jobs_run - self.started_jobs)
                if free <= 0 and not self.running:
                    return
            if free <= 0:
                self.slot_freed.clear()
                await self.slot_freed.wait()
                continue
            if self.running and (gap := self.claimer.next_claim - time.monotonic()) > 0:
                await asyncio.sleep(gap)  # more slots free up meanwhile
                continue
            try:
                claimed, earliest = await self.claimer.claim(free)
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
            await self.claimer.wait_for_work(earliest)

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
        if self.started_jobs == self.max_jobs_run:
            logger.info(
                "started %d jobs (--max-jobs): finishing them, then exiting to be "
                "replaced",
                self.started_jobs,
            )
        run = self.run_claimed(claimed) if self.unhooked else run_hooked(self, claimed)
        task = asyncio.create_task(run, name=f"job-{claimed.id}")
        self.running[claimed.id] = (claimed, task)
        task.add_done_callback(lambda _: self.job_done(claimed.id))

    def job_done(self, job_id: str) -> None:
        self.running.pop(job_id, None)
        self.recorder.releasing.discard(job_id)
        self.canceller.uncancellable.discard(job_id)
        self.slot_freed.set()

    async def run_claimed(self, claimed: Claimed) -> None:
        current_job.set((claimed.id, claimed.task_path))
        try:
            if await self.rate_limits.deferred(claimed):
                return
            outcome = await self.recorder.outcome_of(claimed)
        except (asyncio.CancelledError, KeyboardInterrupt) as stopping:
            if isinstance(stopping, KeyboardInterrupt):  # Ctrl-C: see execute()
                self.stop()  # or the job handed back would be claimed again
            await asyncio.shield(self.recorder.hand_back(claimed))
            raise
        except (RedisError, OSError) as e:  # before the task started
            logger.error(
                "job %s could not start: Redis unavailable (%s)", claimed.id, e
            )
            await asyncio.shield(self.recorder.hand_back(claimed))
            return
        try:
            await asyncio.shield(self.recorder.persist(claimed, outcome))
        except Exception:  # a results cache that fails: the lease will lapse
            logger.exception("job %s: its outcome could not be written", claimed.id)


__all__ = ["DONE_CHANNEL_PREFIX", "JobsWorker"]
