"""The threads plain-function jobs run in, and what stuck ones cost.

A timeout stops waiting on a plain function but cannot stop its thread, which
runs on after its job ended: it is *stuck*. With a pool of `concurrency`
threads, stuck ones would leave the next jobs waiting in the pool's queue, their
timeouts running (recorded FAILED `TimeoutError` without having run) and their
leases renewed, so no idle worker could take them. Here the pool makes a thread
whenever none is idle, up to `concurrency` beside STUCK_PER_SLOT x concurrency
stuck ones; a job's timeout counts from the moment its function starts; and a
worker with more stuck threads than that claims fewer jobs (see `excess()`), so
every job it holds starts at once and the rest stay free for other workers.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger("jobs.worker")

STUCK_PER_SLOT = 3  # stuck threads a worker makes room for, per unit of concurrency


class Threads:
    """Run plain functions in threads for one worker (all calls on its loop)."""

    def __init__(
        self, concurrency: int, on_freed: Callable[[], None] | None = None
    ) -> None:
        self.room = STUCK_PER_SLOT * concurrency  # stuck threads before excess()
        self.executor = ThreadPoolExecutor(
            concurrency + self.room, thread_name_prefix="jobs-sync"
        )
        self.on_freed = on_freed  # called when a thread ends its function
        self.busy: dict[str, int] = {}  # job id -> its functions now in threads
        self.in_threads = 0  # the sum of busy's values
        self.short = False  # whether excess() was last above 0

    async def call(
        self, job_id: str, func: Callable[[], Any], timeout: float | None
    ) -> Any:
        """Run `func` in a thread; TimeoutError `timeout` s after it started."""
        loop = asyncio.get_running_loop()
        started = loop.create_future()
        context = contextvars.copy_context()  # the job's log context, in the thread

        def in_thread() -> Any:
            self._tell(loop, self._started, job_id, started)
            try:
                return context.run(func)
            finally:
                self._tell(loop, self._ended, job_id)

        done = loop.run_in_executor(self.executor, in_thread)
        if timeout is None:
            return await done
        try:
            await started  # waiting for a thread is not the job's time
        except BaseException:
            done.cancel()  # not started yet: it never will
            raise
        try:
            async with asyncio.timeout(timeout):
                return await done
        except TimeoutError:
            logger.warning(
                "job %s timed out; its function runs on in its thread "
                "(%d plain functions in threads)",
                job_id,
                self.in_threads,
            )
            raise

    @staticmethod
    def _tell(loop: asyncio.AbstractEventLoop, *call: Any) -> None:
        try:
            loop.call_soon_threadsafe(*call)
        except RuntimeError:  # the loop closed: the worker has stopped
            pass

    def _started(self, job_id: str, started: asyncio.Future[None]) -> None:
        self.busy[job_id] = self.busy.get(job_id, 0) + 1
        self.in_threads += 1
        if not started.done():
            started.set_result(None)

    def _ended(self, job_id: str) -> None:
        left = self.busy.pop(job_id, 1) - 1
        if left:
            self.busy[job_id] = left
        self.in_threads -= 1
        if self.on_freed is not None:
            self.on_freed()

    def stuck(self, running: Collection[str]) -> int:
        """Threads still running the function of a job that has ended."""
        return sum(n for job_id, n in self.busy.items() if job_id not in running)

    def excess(self, running: Collection[str]) -> int:
        """Stuck threads beyond the room made for them: slots to leave empty."""
        if self.in_threads <= self.room:  # the common case, counted cheaply
            return 0
        excess = max(0, self.stuck(running) - self.room)
        if excess and not self.short:
            logger.warning(
                "%d plain-function threads are stuck past their jobs' timeouts: "
                "taking %d fewer jobs until they end",
                excess + self.room,
                excess,
            )
        self.short = excess > 0
        return excess

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
