"""What each claimed job ended as, written back to Redis.

A job that cannot run (expired, cancelled while queued, a bad payload, an
unknown task) is recorded FAILED without running; a finished attempt is written
by FINISH or RETRY through the worker's batcher, in the order its writes were
made; a job cut short by shutdown is handed back without counting as an attempt.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from django.tasks.base import TaskResultStatus
from django.tasks.signals import task_finished
from django.utils import timezone
from redis.exceptions import RedisError

from jobs import records, serialization
from jobs.exceptions import (
    JobCancelled,
    JobExpired,
    JobsError,
    PayloadTooLarge,
    SerializationError,
)
from jobs.records import Record, arq_result
from jobs.redis import flows, scripts
from jobs.redis.keys import ARQ_RESULT_KEY_PREFIX, WORKFLOW_KEY_PREFIX
from jobs.redis.scripts import LuaScript, now_ms
from jobs.signals import send, task_failed
from jobs.worker.execution import (
    Claimed,
    Outcome,
    Runtime,
    execute,
)
from jobs.worker.running import RunningWriter
from jobs.worker.unrunnable import (
    NOT_RUNNABLE,
    failed_without_running,
    unrecordable,
)

if TYPE_CHECKING:
    from jobs.task import JobResult
    from jobs.worker.loop import JobsWorker

logger = logging.getLogger("jobs.worker")


def run_seconds(outcome: Outcome) -> float | None:
    """How long the run took, from its result."""
    result = outcome.result
    if result is None or result.last_attempted_at is None:
        return None
    end = result.finished_at or timezone.now()  # as the result: USE_TZ or not
    return max((end - result.last_attempted_at).total_seconds(), 0.0)


def send_finished(sender: type, result: JobResult, error: BaseException | None) -> None:
    """Send task_finished for `result`, which failed with `error` if given;
    task_failed first for a FAILED one, once it is recorded (run or not).

    As Django does, a failure's signal is sent while its exception is being
    handled: receivers read it from sys.exc_info(), Django's own log included
    (the failure is logged with its traceback). A run to be retried has not
    finished: no signal, or Django would log its traceback for every retry
    (the worker logs the retry at WARNING).
    """
    if result.status == TaskResultStatus.READY:
        return
    if result.status == TaskResultStatus.FAILED:
        send(task_failed, sender, task_result=result, exception=error)
    if error is None:
        task_finished.send(sender, task_result=result)
        return
    traceback = error.__traceback__
    try:
        raise error
    except BaseException:
        error.__traceback__ = traceback  # the task's frames, without this one
        task_finished.send(sender, task_result=result)


def workflow_step(record: Record) -> dict[str, Any] | None:
    """{"id", "stage", "index"} when the job is a step of a workflow.

    Read from the record, which has it from the payload, or for a job that
    could not run (expired: no payload left) from its READY record.
    """
    meta = record.get("meta")
    step = meta.get("workflow") if isinstance(meta, dict) else None
    if not isinstance(step, dict):
        return None
    # A planted payload's bad step ends as a plain job (FINISH_STEP would find
    # no such slot in any workflow anyway).
    shape = (step.get("id"), step.get("stage"), step.get("index"))
    if not (isinstance(shape[0], str) and all(type(n) is int for n in shape[1:])):
        return None
    return step


def finish_script(
    keys: list[Any], args: list[Any], record: Record
) -> tuple[LuaScript, list[Any], list[Any]]:
    """FINISH with its keys and args, or FINISH_STEP for a workflow's step (it
    returns {owned, what the step did} where FINISH returns owned)."""
    step = workflow_step(record)
    if step is None:
        return scripts.FINISH, keys, args
    keys = [*keys, WORKFLOW_KEY_PREFIX + step["id"]]
    return flows.FINISH_STEP, keys, [*args, *step_args(step, record)]


def step_args(step: dict[str, Any], record: Record) -> list[Any]:
    """FINISH_STEP's arguments after FINISH's: the step and how it ended."""
    ok = record["status"] == "SUCCESSFUL"
    value = serialization.dumps(record.get("return_value")) if ok else ""
    return [step["id"], step["stage"], step["index"], "ok" if ok else "", value]


def expired_error(record: Record | None) -> JobExpired:
    """The error of a job whose key expired before a worker started it."""
    at = record.get("expires_at") if record is not None else None
    if at is None:
        return JobExpired(
            "The job expired before a worker ran it (waited past EXPIRES after "
            "it was due)."
        )
    return JobExpired(f"The job expired at {at}, before a worker started it.")


class Recorder:
    """Run one claimed job to its outcome and record it, for one worker."""

    def __init__(self, worker: JobsWorker) -> None:
        self.worker = worker
        self.running_writer = RunningWriter(worker.backend.results, worker.batcher)
        # Jobs whose FINISH or RETRY (which end the lease) is queued: the heartbeat
        # no longer renews them, or a renewal landing after it would find the
        # lease gone and report it lost.
        self.releasing: set[str] = set()

    async def outcome_of(self, claimed: Claimed) -> Outcome:
        if claimed.attempt < 0:
            error = JobCancelled("The job was cancelled before it ran.")
            return await self.not_runnable(claimed, error)
        if claimed.attempt == 0:  # its key expired: see enqueue.expiry_ms
            return await self.not_runnable(claimed, None)
        try:
            return await execute(self.worker.runtime, claimed)
        except NOT_RUNNABLE as e:
            logger.error("job %s cannot run: %s", claimed.id, e)
            return await self.not_runnable(claimed, e)
        except (RedisError, OSError):
            raise  # Redis away before the job started: see JobsWorker.run_claimed
        except Exception as e:  # e.g. a task_started receiver: never a crash loop
            logger.exception("job %s could not start", claimed.id)
            return await self.not_runnable(claimed, e)

    async def not_runnable(
        self, claimed: Claimed, error: BaseException | None
    ) -> Outcome:
        """The FAILED outcome of a job that cannot run; `error` None: expired."""
        try:
            previous = await self.worker.backend.results.aget(claimed.id)
        except Exception:  # a garbage record must not stop us recording the failure
            previous = None
        if error is None:
            error = expired_error(previous)
        return failed_without_running(self.worker.runtime, claimed, error, previous)

    async def write_running(self, record: Record) -> None:
        """Record RUNNING, only if the job is still running after RUNNING_AFTER
        (see jobs.worker.running); a full or absent Redis does not stop the job."""
        self.running_writer.add(record)

    async def persist(self, claimed: Claimed, outcome: Outcome) -> None:
        """Write the outcome, retrying while Redis is away (the lease may lapse)."""
        await self.skip_running(claimed.id)
        outcome, encoded = self.storable(claimed, outcome)
        while True:
            self.releasing.add(claimed.id)
            try:
                await self.write_outcome(claimed, outcome, encoded)
                self.worker.redis_back()
                break
            except (RedisError, OSError) as e:
                self.releasing.discard(claimed.id)  # keep the lease meanwhile
                await self.worker.redis_away(e)
        status = outcome.record["status"]
        self.worker.metrics.observe(
            outcome.record.get("task") or "-",
            "RETRIED" if outcome.retry_at_ms is not None else status,
            run_seconds(outcome),
        )
        if outcome.retry_at_ms is not None:
            self.worker.jobs_retried += 1
        elif status == "SUCCESSFUL":
            self.worker.jobs_complete += 1
        else:
            self.worker.jobs_failed += 1
        if outcome.result is not None:
            send_finished(type(self.worker.backend), outcome.result, outcome.error)

    def storable(
        self, claimed: Claimed, outcome: Outcome
    ) -> tuple[Outcome, tuple[str, bytes | str]]:
        return storable(self.worker.runtime, claimed, outcome)

    async def write_outcome(
        self, claimed: Claimed, outcome: Outcome, encoded: tuple[str, bytes | str]
    ) -> None:
        store = self.worker.backend.results
        await store.astore_outside(outcome.record)
        result_key, record = encoded
        ttl_ms = store.ttl_ms
        if outcome.retry_at_ms is not None:
            keys = [claimed.queue_key, self.wake_key_of(claimed), result_key]
            args = [claimed.id, outcome.retry_at_ms, record, ttl_ms, ""]
            await self.worker.batcher.script(scripts.RETRY, keys, args)
            return
        arq_key, arq_record = "", b""
        if self.worker.config.arq_results:
            arq_key = ARQ_RESULT_KEY_PREFIX + claimed.id
            arq_record = arq_result(
                outcome.record,
                max(claimed.attempt, 1),
                claimed.queue_key,
                outcome.times,
            )
        keys = [claimed.queue_key, result_key, arq_key]
        args = [claimed.id, self.worker.worker_id, record, ttl_ms, now_ms(), arq_record]
        finish = finish_script(keys, args, outcome.record)
        reply = await self.worker.batcher.script(*finish)
        lease = reply[0] if isinstance(reply, list) else reply
        if lease == 0:  # nobody's: Redis forgot it, or it ran out unrenewed
            logger.warning(
                "job %s finished after its lease had lapsed (Redis restarted "
                "without persistence, or no heartbeat for LEASE); no other "
                "worker held it",
                claimed.id,
            )
        elif lease != 1:
            logger.warning(
                "job %s finished here after its lease passed to worker %s: it "
                "may have run twice",
                claimed.id,
                lease.decode(errors="replace"),
            )

    async def skip_running(self, job_id: str) -> None:
        """Drop the job's RUNNING record unless written; wait if being written."""
        writing = self.running_writer.discard(job_id)
        if writing is not None:
            await asyncio.wait([writing])

    def wake_key_of(self, claimed: Claimed) -> str:
        if claimed.wake_key:
            return claimed.wake_key
        return str(
            self.worker.claimer.wake_keys[
                self.worker.claimer.queue_keys.index(claimed.queue_key)
            ]
        )

    async def hand_back(self, claimed: Claimed) -> None:
        """Requeue a job cut short by shutdown; it does not count as an attempt."""
        await self.skip_running(claimed.id)
        self.releasing.add(claimed.id)
        try:
            keys = [claimed.queue_key, self.wake_key_of(claimed), ""]
            args = [claimed.id, now_ms(), "", 0, "release"]
            await self.worker.batcher.script(scripts.RETRY, keys, args)
            record = await self.worker.backend.results.aget(claimed.id)
            if record is not None and record["status"] == "RUNNING":
                record["status"] = "READY"
                await self.worker.backend.results.aset(record)
            logger.warning("job %s handed back to the queue", claimed.id)
        except (RedisError, OSError) as e:
            logger.error(
                "could not hand job %s back (%s); its lease will expire", claimed.id, e
            )


def storable(
    runtime: Runtime, claimed: Claimed, outcome: Outcome
) -> tuple[Outcome, tuple[str, bytes | str]]:
    """The outcome and its record's script arguments, or, when the record
    cannot be encoded or is over MAX_RESULT, a FAILED outcome saying so (both
    workers: jobs_worker's Recorder and arq's, jobs.worker.native)."""
    store = runtime.backend.results
    limit = runtime.backend.config.max_result
    for fallback in (False, True):
        try:
            encoded = store.script_args(outcome.record)
            size = len(encoded[1] if encoded[0] else records.encode(outcome.record))
        except SerializationError as e:
            error: JobsError = SerializationError(
                f"The job's outcome could not be recorded: {e}"
            )
        else:
            if size <= limit:
                return outcome, encoded
            error = PayloadTooLarge(
                f"The result record is {size} bytes, over MAX_RESULT ({limit}): "
                "store large results elsewhere (a file, a model) and return "
                "a reference."
            )
        logger.error("job %s: %s", claimed.id, error)
        outcome = unrecordable(runtime, claimed, outcome, error, fallback)
    return outcome, store.script_args(outcome.record)
