"""Progress reports from inside a running task to the result record.

Each report rewrites the RUNNING record with its `progress` and publishes it on
`jobs:progress:<id>`, so a page can follow it live (server-sent events) and a
poller sees it in `result.progress`. Reports are written before the task goes
on, so none can land after the final result.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from jobs import records
from jobs.redis import connections, scripts

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.redis.batching import CommandBatcher

MIN_INTERVAL = 0.1  # seconds between two writes; reports in between are coalesced


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

    def _update(self, done: float, total: float | None, message: str) -> bool:
        """Store the report; say whether it is worth a write now."""
        self.record["progress"] = {
            "done": done,
            "total": total,
            "message": str(message)[:500],
            "updated_at": timezone.now().isoformat(),
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
        self.backend.results.store_outside(self.record)
        wire = connections.sync_wire(self.backend.config)
        scripts.PROGRESS.call(wire, *self._script_args())

    async def aset(
        self, done: float, total: float | None = None, message: str = ""
    ) -> None:
        if self._update(done, total, message):
            await self.awrite()

    async def awrite(self) -> None:
        """Write the record as it stands and tell live listeners."""
        await self.backend.results.astore_outside(self.record)
        if self.batcher is not None:
            await self.batcher.script(scripts.PROGRESS, *self._script_args())
        else:
            wire = connections.async_wire(self.backend.config)
            await scripts.PROGRESS.acall(wire, *self._script_args())

    def _script_args(self) -> tuple[list[Any], list[Any]]:
        key, encoded = self.backend.results.script_args(self.record)
        record_id = self.record["id"]
        published = encoded or records.encode(self.record)
        return [key], [record_id, published, self.backend.results.ttl_ms]
