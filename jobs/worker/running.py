"""RUNNING records, written only for jobs that run long enough to be seen.

Most jobs finish within milliseconds, and writing RUNNING for each would add a
write per job on a busy worker (Celery does not record STARTED by default). A
job's RUNNING record is written once it has run for RUNNING_AFTER seconds of
wall time. One timer serves every running job: jobs start in order, so their
deadlines come in order, and a finished job is simply forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from jobs.exceptions import SerializationError

if TYPE_CHECKING:
    from jobs import results
    from jobs.records import Record
    from jobs.redis.batching import CommandBatcher

logger = logging.getLogger("jobs.worker")

# Wall time, not CPU time: under load a 1 ms job can take tens of ms to finish,
# and a shorter delay would write RUNNING for nearly every job of a busy worker.
RUNNING_AFTER = 0.25  # seconds
# RUNNING may land up to this much later: the timer then wakes at most this
# often, however many jobs a second start.
TICK = 0.05  # seconds


class RunningWriter:
    """Write a job's RUNNING record RUNNING_AFTER seconds after it started.

    On the queue's Redis the batcher keeps order, so RUNNING lands before
    anything the job writes later (its progress, its result). A record stored
    outside is written by the store; `discard()` returns that write, for the
    job's next write to wait on.
    """

    def __init__(
        self,
        store: results.ResultStore,
        batcher: CommandBatcher,
        delay: float = RUNNING_AFTER,
    ) -> None:
        self.store = store
        self.batcher = batcher
        self.delay = delay
        # job id -> (deadline, record); a retry of the same job on this worker
        # gets a new deadline, and the earlier one must not write its record.
        self.pending: dict[str, tuple[float, Record]] = {}
        self.deadlines: deque[tuple[float, str]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.outside: dict[str, asyncio.Future[Any]] = {}  # writes in flight

    def add(self, record: Record) -> None:
        """Write `record` after the delay, unless discard() comes first."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.delay
        self.pending[record["id"]] = (due, record)
        self.deadlines.append((due, record["id"]))
        if self.timer is None:
            self.timer = loop.call_at(due, self._fire, loop)

    def discard(self, job_id: str) -> asyncio.Future[Any] | None:
        """The job ended: its RUNNING record is no longer worth writing.

        Return the write of it still in flight outside the queue's Redis, if any.
        """
        self.pending.pop(job_id, None)
        return self.outside.pop(job_id, None)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        now = loop.time()
        while self.deadlines:
            due, job_id = self.deadlines[0]
            if due > now:
                self.timer = loop.call_at(max(due, now + TICK), self._fire, loop)
                return
            self.deadlines.popleft()
            entry = self.pending.get(job_id)
            if entry is not None and entry[0] == due:
                del self.pending[job_id]
                self._send(job_id, entry[1])

    def _send(self, job_id: str, record: Record) -> None:
        try:
            key, value = self.store.script_args(record)
        except SerializationError as e:  # the outcome will say it (see persist)
            written(job_id, e)
            return
        if key:
            sent = self.batcher.send("SET", key, value, "EX", self.store.ttl)
        else:
            sent = asyncio.ensure_future(self.store.astore_outside(record))
            self.outside[job_id] = sent
            sent.add_done_callback(lambda _: self._forget(job_id, sent))
        sent.add_done_callback(lambda f: written(job_id, f))

    def _forget(self, job_id: str, sent: asyncio.Future[Any]) -> None:
        if self.outside.get(job_id) is sent:
            del self.outside[job_id]

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def written(job_id: str, sent: asyncio.Future[Any] | BaseException) -> None:
    """Log (and go on) when RUNNING could not be written: the job runs anyway."""
    error = sent if isinstance(sent, BaseException) else None
    if isinstance(sent, asyncio.Future) and not sent.cancelled():
        error = sent.exception()
    if error is not None:
        logger.warning("job %s runs, but RUNNING was not recorded: %s", job_id, error)
