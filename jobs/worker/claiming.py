"""Taking jobs (Redis): the CLAIM script for a batch, its rows read, and the
wait on the wake lists while no job is due.

One Claimer per worker holds the key names its claims and waits use.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from jobs.exceptions import JobsError, PayloadTooLarge, SerializationError
from jobs.redis import connections, scripts
from jobs.redis.keys import (
    IN_PROGRESS_KEY_PREFIX,
    JOB_KEY_PREFIX,
    PRIORITIES_KEY_PREFIX,
    RETRY_KEY_PREFIX,
    WAKE_KEY_PREFIX,
    priority_prefix,
    queue_key,
)
from jobs.redis.scripts import now_ms
from jobs.worker.execution import Claimed

if TYPE_CHECKING:
    from jobs.worker.loop import JobsWorker

logger = logging.getLogger("jobs.worker")

RETRY_KEY_TTL = 88_400  # seconds, as arq keeps its retry counters
# While jobs run, claims are this far apart at least: under load each finished
# job frees a slot, and a claim per job would cost more than the job itself.
# An idle worker claims the moment it is woken.
CLAIM_GAP = 0.002  # seconds


def refused(
    job_id: str, row: list[Any], queue_key: str, wake_key: str, max_payload: int
) -> Claimed:
    """A claimed job the CLAIM script did not read, with the reason it fails."""
    problem = f"refused a job: {row[4].decode()}"
    error: JobsError = SerializationError(problem)
    if problem.endswith("bytes"):
        problem += f", over MAX_PAYLOAD ({max_payload}); it was not read"
        error = PayloadTooLarge(problem)
    return Claimed(job_id, None, int(row[2]), queue_key, None, error, wake_key)


class Claimer:
    """Claims batches of due jobs for one worker, and waits for more."""

    def __init__(self, worker: JobsWorker) -> None:
        self.worker = worker
        queues = worker.queues
        self.queue_keys = [queue_key(q) for q in queues]
        self.wake_keys = [WAKE_KEY_PREFIX + q for q in queues]
        self.claim_keys = [
            *self.queue_keys,
            *self.wake_keys,
            *(PRIORITIES_KEY_PREFIX + q for q in queues),
        ]
        self.priority_prefixes = [priority_prefix(q) for q in queues]
        self.next_claim = 0.0  # time.monotonic() of the earliest next claim
        self.wait_task: asyncio.Task[Any] | None = None
        # BLPOP blocks for less than a read may wait, or every idle wait would
        # end as a timeout; a shorter block only means an extra claim.
        read_max = connections.socket_timeout(worker.config)
        self.block_max = worker.config.poll_interval
        if read_max is not None:
            self.block_max = min(self.block_max, read_max / 2)

    async def claim(self, count: int) -> tuple[list[Claimed], int | None]:
        worker = self.worker
        self.next_claim = time.monotonic() + CLAIM_GAP
        args = [
            *(now_ms(), worker.config.lease_ms, count, worker.worker_id, RETRY_KEY_TTL),
            worker.config.max_payload,
            *self.priority_prefixes,
        ]
        # In the batcher's pipeline: a claim made as jobs finish shares their
        # FINISH commands' write and round trip.
        rows, earliest = await worker.batcher.script(
            scripts.CLAIM, self.claim_keys, args
        )
        claimed = []
        for row in rows:
            queue = int(row[3]) - 1
            # A sixth field names the priority's own queue (see keys.queue_key).
            queue_key = row[5].decode() if len(row) > 5 else self.queue_keys[queue]
            wake_key = self.wake_keys[queue]
            try:
                job_id = row[0].decode()
            except UnicodeDecodeError:  # planted: no key or record can name it
                await self.drop_unnamed(row[0], queue_key)
                continue
            if len(row) > 4 and row[4] is not None:  # not read (see CLAIM)
                claimed.append(
                    refused(job_id, row, queue_key, wake_key, worker.config.max_payload)
                )
                continue
            claimed.append(
                Claimed.decoded(job_id, row[1], int(row[2]), queue_key, wake_key)
            )
        return claimed, None if earliest is None else int(earliest)

    async def drop_unnamed(self, raw_id: bytes, queue_key: str) -> None:
        """Remove a job whose id is not UTF-8: it cannot have a result record."""
        logger.error("dropped job %r: its id is not UTF-8 text", raw_id)
        prefixes = (JOB_KEY_PREFIX, IN_PROGRESS_KEY_PREFIX, RETRY_KEY_PREFIX)
        keys = [prefix.encode() + raw_id for prefix in prefixes]
        await self.worker.wire.call_many([("ZREM", queue_key, raw_id), ("DEL", *keys)])

    async def wait_for_work(self, earliest: int | None) -> None:
        """Block until a wake token, the next due job, or the safety poll."""
        worker = self.worker
        timeout = self.block_max
        if earliest is not None:
            timeout = min(timeout, max(earliest - now_ms(), 0) / 1000)
        if timeout < 0.001:
            return
        blpop = worker.pool.blpop(self.wake_keys, timeout=timeout)  # type: ignore[arg-type]
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(blpop)]  # type: ignore[arg-type]
        self.wait_task = waits[0]  # type: ignore[assignment]
        if worker.burst and worker.running:
            worker.slot_freed.clear()
            waits.append(asyncio.ensure_future(worker.slot_freed.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.wait_task = None
            for w in waits:
                w.cancel()
            for w in waits:
                if w.done() and not w.cancelled() and w.exception() is not None:
                    await worker.redis_away(w.exception())  # type: ignore[arg-type]
