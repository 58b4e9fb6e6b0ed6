"""Progress reports from inside a running task to the result record.

Each report rewrites the RUNNING record with its `progress` and publishes it on
`jobs:progress:<id>`, so a page can follow it live (server-sent events) and a
poller sees it in `result.progress`. Reports are written before the task goes
on, so none can land after the final result.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from jobs import records
from jobs.redis import connections, scripts

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.redis.batching import CommandBatcher

logger = logging.getLogger("jobs.worker")

MIN_INTERVAL = 0.1  # seconds between two writes; reports in between are coalesced


def check_number(value: Any, name: str) -> None:
    """Raise at the task's call, with a clear message, for a value no record
    can carry (JSON has no NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"progress {name} must be a number, not {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"progress {name} must be a finite number, not {value!r}.")


def _on_a_loop() -> bool:
    """Whether this thread runs an event loop (a coroutine calling set_progress)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class ProgressReporter:
    """Writes one job's progress; made by the worker for each run."""

    def __init__(
        self,
        backend: JobsBackend,
        record: records.Record,
        batcher: CommandBatcher | None = None,
    ) -> None:
        self.backend = backend
        # Through the worker's batcher when there is one, to stay in order with
        # the job's other writes.
        self.batcher = batcher
        self.record = record  # the RUNNING record, updated in place
        self.last_write = 0.0
        self.loop = asyncio.get_running_loop()
        self.failing = False  # the last write failed (logged once per outage)

    def _update(self, done: float, total: float | None, message: str) -> bool:
        """Store the report; say whether it is worth a write now."""
        check_number(done, "done")
        if total is not None:
            check_number(total, "total")
        self.record["progress"] = {
            "done": done,
            "total": total,
            "message": str(message)[:500],
            "updated_at": records.now_stamp(),
        }
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self.last_write < MIN_INTERVAL:
            return False
        self.last_write = now
        return True

    def set(self, done: float, total: float | None = None, message: str = "") -> None:
        if not self._update(done, total, message):
            return
        if self.batcher is not None and not _on_a_loop():
            # A plain function, in a pool thread: through the worker's batcher.
            asyncio.run_coroutine_threadsafe(self.awrite(), self.loop).result()
            return
        try:
            self.backend.results.store_outside(self.record)
            wire = connections.sync_wire(self.backend.config)
            scripts.PROGRESS.call(wire, *self._script_args())
        except Exception as e:  # see awrite()
            self._failed(e)

    async def aset(
        self, done: float, total: float | None = None, message: str = ""
    ) -> None:
        if self._update(done, total, message):
            await self.awrite()

    async def awrite(self) -> None:
        """Write the record as it stands and tell live listeners.

        A write that fails (Redis away) is not the task's failure: the report
        stays in the record, which the next write or the result carries.
        """
        try:
            await self.backend.results.astore_outside(self.record)
            if self.batcher is not None:
                await self.batcher.script(scripts.PROGRESS, *self._script_args())
            else:
                wire = connections.async_wire(self.backend.config)
                await scripts.PROGRESS.acall(wire, *self._script_args())
        except Exception as e:
            self._failed(e)
            return
        if self.failing:
            self.failing = False
            logger.warning("job %s: progress written again", self.record["id"])

    def _failed(self, error: Exception) -> None:
        if not self.failing:
            self.failing = True
            logger.warning(
                "job %s: progress not written (%s); kept for the next write",
                self.record["id"],
                error,
            )

    def _script_args(self) -> tuple[list[Any], list[Any]]:
        key, encoded = self.backend.results.script_args(self.record)
        record_id = self.record["id"]
        published = encoded or records.encode(self.record)
        return [key], [record_id, published, self.backend.results.ttl_ms]
