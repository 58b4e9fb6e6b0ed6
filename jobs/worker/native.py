"""Django tasks run by arq's own Worker (`arq jobs.arq.WorkerSettings`).

arq's loop claims the job, applies its job timeout, retries on `Retry` and
writes arq's result; each registered task is an arq function that runs the job
through the same code `jobs_worker` uses (`execute`: the task's own timeout,
attempts, retry policy, signals, close_old_connections for plain functions) and
writes the Django result record with the FINISH script, so `result.get()`, the
dashboard and `task_finished` receivers see it as they see any job. Cancels
come as they do to `jobs_worker`: `backend.cancel()`'s message, and arq's abort
set swept every poll.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any, cast

from arq.worker import Function, Retry

from jobs import registry
from jobs.exceptions import JobCancelled, PayloadTooLarge
from jobs.records import Record
from jobs.redis.batching import CommandBatcher
from jobs.redis.keys import ABORT_KEY, JOB_KEY_PREFIX
from jobs.redis.scripts import now_ms
from jobs.redis.wire import AsyncWire
from jobs.worker.cancelling import Canceller
from jobs.worker.execution import (
    Claimed,
    Outcome,
    Runtime,
    execute,
)
from jobs.worker.outcomes import finish_script, send_finished, storable
from jobs.worker.running import RunningWriter
from jobs.worker.threads import Threads
from jobs.worker.unrunnable import NOT_RUNNABLE, failed_without_running

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from jobs.backend import JobsBackend
    from jobs.worker.loop import JobsWorker

RUNNER = "jobs.runner"  # the ctx key of this process's NativeRunner


class NativeRunner:
    """What arq's Worker needs to run Django tasks: set up by `on_startup`."""

    def __init__(
        self, backend: JobsBackend, queue_key: str, pool: ArqRedis, concurrency: int
    ) -> None:
        self.backend = backend
        self.config = backend.config
        self.queue_key = queue_key
        self.pool = pool
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.threads = Threads(concurrency)
        self.wire = AsyncWire(pool.connection_pool)
        self.batcher = CommandBatcher(self.wire)
        self.running_writer = RunningWriter(backend.results, self.batcher)
        self.runtime = Runtime(
            backend=backend,
            worker_id=self.worker_id,
            threads=self.threads,
            batcher=self.batcher,
        )
        self.runtime.mark_running = self.write_running
        self.running: dict[str, tuple[Claimed, asyncio.Task[Any]]] = {}
        # The Canceller reads .pool, .running, .runtime and .config, as here.
        self.canceller = Canceller(cast("JobsWorker", self))
        self.listener: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.listener = asyncio.create_task(self.listen(), name="jobs-cancel")

    async def listen(self) -> None:
        """backend.cancel()'s messages at once, and arq's abort set every poll."""
        sweeper = asyncio.create_task(self.sweep())
        try:
            await self.canceller.listen()
        finally:
            sweeper.cancel()

    async def sweep(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval)
            try:
                await self.canceller.sweep()
            except OSError:
                pass

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
        self.running_writer.close()
        await self.batcher.close()
        await self.wire.aclose()
        self.threads.shutdown()

    async def write_running(self, record: Record) -> None:
        self.running_writer.add(record)

    async def run(self, ctx: dict[str, Any]) -> Any:
        """Run the job in `ctx`: its value, Retry, or the task's exception."""
        job_id = ctx["job_id"]
        async with self.pool.pipeline(transaction=False) as pipe:
            pipe.get(JOB_KEY_PREFIX + job_id)
            pipe.zscore(ABORT_KEY, job_id)  # arq's abort of a job not yet run
            payload, aborted = await pipe.execute()
        attempt = -1 if aborted is not None else ctx["job_try"]
        claimed = Claimed.decoded(job_id, payload, attempt, self.queue_key)
        if payload is not None and len(payload) > self.config.max_payload:
            # Enqueue refuses these; one planted past it fails here, not runs.
            error = PayloadTooLarge(
                f"refused a job: the job is {len(payload)} bytes, over "
                f"MAX_PAYLOAD ({self.config.max_payload})"
            )
            claimed = Claimed(job_id, None, attempt, self.queue_key, None, error)
        task = asyncio.current_task()
        assert task is not None
        self.running[job_id] = (claimed, task)
        try:
            outcome = await self.outcome_of(claimed)
        except asyncio.CancelledError:  # arq's shutdown: arq runs it again
            await asyncio.shield(self.hand_back(job_id))
            raise
        finally:
            self.running.pop(job_id, None)
            self.runtime.cancelling.discard(job_id)
        outcome = await asyncio.shield(self.record(claimed, outcome))
        return self.value_of(outcome)

    async def outcome_of(self, claimed: Claimed) -> Outcome:
        try:
            if claimed.attempt < 0:
                raise JobCancelled("The job was cancelled before it ran.")
            return await execute(self.runtime, claimed)
        except (*NOT_RUNNABLE, JobCancelled) as e:
            previous = await self.backend.results.aget(claimed.id)
            return failed_without_running(self.runtime, claimed, e, previous)

    async def record(self, claimed: Claimed, outcome: Outcome) -> Outcome:
        """The Django record: READY to retry (arq requeues), else FINISH's;
        returns the outcome recorded (FAILED when its record was too big)."""
        writing = self.running_writer.discard(claimed.id)
        if writing is not None:
            await asyncio.wait([writing])
        store = self.backend.results
        outcome, (result_key, encoded) = storable(self.runtime, claimed, outcome)
        if outcome.retry_at_ms is not None:
            await store.aset(outcome.record)
        else:
            await store.astore_outside(outcome.record)
            # arq writes its own result record after this: no arq key here.
            keys = [self.queue_key, result_key, ""]
            args = [claimed.id, self.worker_id, encoded, store.ttl_ms, now_ms(), b""]
            finish = finish_script(keys, args, outcome.record)
            await self.batcher.script(*finish)
        if outcome.result is not None:
            send_finished(type(self.backend), outcome.result, outcome.error)
        return outcome

    @staticmethod
    def value_of(outcome: Outcome) -> Any:
        """What arq records: the value, a Retry, or the failure as an Exception."""
        if outcome.retry_at_ms is not None:
            raise Retry(defer=max(outcome.retry_at_ms - now_ms(), 0) / 1000)
        if outcome.record["status"] == "SUCCESSFUL":
            return outcome.record.get("return_value")
        error = outcome.error
        if isinstance(error, Exception):
            raise error
        # SystemExit & co. would stop arq's Worker: the record has the class.
        raise RuntimeError(repr(error))

    async def hand_back(self, job_id: str) -> None:
        record = await self.backend.results.aget(job_id)
        if record is not None and record["status"] == "RUNNING":
            await self.backend.results.aset({**record, "status": "READY"})


def functions(timeout: float | None) -> list[Function]:
    """arq's function table: one entry per registered task, named by its path.

    Attempts are counted by `execute` (the task's max_attempts), so arq's own
    limit is set out of the way by WorkerSettings.max_tries; arq's timeout is
    the task's (plus a second, so the task's own timeout fires first).
    """
    table = []
    for path, task in sorted(registry.all_tasks().items()):
        limit = task.timeout or timeout
        table.append(
            Function(
                name=path,
                coroutine=_run,
                timeout_s=None if limit is None else limit + 1,
                keep_result_s=None,
                keep_result_forever=None,
                max_tries=None,
            )
        )
    return table


async def _run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """arq calls this with the job's arguments; the runner reads the job itself
    (its queue, backend and meta are in the payload, not in the arguments)."""
    return await cast(NativeRunner, ctx[RUNNER]).run(ctx)
