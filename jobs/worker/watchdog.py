"""A thread that watches the worker's event loop.

A coroutine that blocks the loop (CPU work, a blocking call without `await`)
stops everything else on it: the heartbeat, other jobs, timeouts, cancels. Its
leases would lapse and another worker would run the job again while it still
runs here. The watchdog sees the loop stop ticking, logs a warning naming the
job and the line it is blocked at, and renews the worker's leases from its own
thread until the loop runs again, so the job runs once. The job's timeout can
only fire at its next `await`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from jobs.redis import connections, scripts
from jobs.redis.scripts import now_ms
from jobs.worker import execution

if TYPE_CHECKING:
    from jobs.worker.loop import JobsWorker

logger = logging.getLogger("jobs.worker")

TICK = 0.25  # seconds between the loop's ticks, and between the watchdog's looks
BLOCKED_AFTER = 1.0  # seconds without a tick that count as a blocked loop


class Watchdog:
    """Watch one worker's loop from a thread (see the module docstring)."""

    def __init__(self, worker: JobsWorker) -> None:
        self.worker = worker
        self.tick = time.monotonic()
        self.stopped = threading.Event()
        self.loop_thread = threading.get_ident()
        self.renew_every = worker.config.lease / 3  # seconds, as the heartbeat
        # Seen and renewed well within a lease, however short: the heartbeat may
        # have renewed up to LEASE / 3 before the loop blocked.
        self.blocked_after = min(BLOCKED_AFTER, worker.config.lease / 4)
        self.tick_every = min(TICK, self.blocked_after / 4)

    async def run(self) -> None:
        """Tick on the loop, with the watching thread beside it, until cancelled."""
        self.loop_thread = threading.get_ident()
        watcher = threading.Thread(target=self.watch, name="jobs-watchdog", daemon=True)
        watcher.start()
        try:
            while True:
                self.tick = time.monotonic()
                await asyncio.sleep(self.tick_every)
        finally:
            self.stopped.set()

    def watch(self) -> None:
        since: float | None = None  # the last tick before the loop blocked
        renewed = 0.0
        while not self.stopped.wait(self.tick_every):
            last = self.tick
            lag = time.monotonic() - last
            if lag < self.blocked_after:
                if since is not None:
                    logger.warning("event loop ran again after %.1f s", last - since)
                since = None
                continue
            if since is None:
                since = last
                logger.warning(
                    "event loop blocked for %.1f s %s: nothing else runs meanwhile "
                    "(put blocking work in a plain function or asyncio.to_thread); "
                    "its leases are renewed from a thread until it runs again",
                    lag,
                    self.culprit(),
                )
            if time.monotonic() - renewed >= self.renew_every:
                renewed = time.monotonic()
                self.renew_leases()

    def culprit(self) -> str:
        """Which job blocks the loop, and where, read from the loop thread's stack."""
        frame = sys._current_frames().get(self.loop_thread)
        if frame is None:
            return "(no stack)"
        where = f"at {frame.f_code.co_filename}:{frame.f_lineno}"
        job = job_of(frame)
        if job is None:
            return f"outside any job, {where}"
        return f"by job {job.id} ({job.task.module_path}), {where}"

    def renew_leases(self) -> None:
        """Renew the running jobs' leases through a sync connection (not the loop)."""
        worker = self.worker
        try:
            running = [claimed for claimed, _ in list(worker.running.values())]
        except RuntimeError:  # changed under us: the loop is running after all
            return
        releasing = worker.recorder.releasing
        args: list[Any] = [worker.worker_id, worker.config.lease_ms, now_ms()]
        for claimed in running:
            if claimed.id not in releasing:
                args += [claimed.queue_key, claimed.id]
        if len(args) == 3:
            return
        try:
            wire = connections.sync_wire(worker.config)
            scripts.RENEW.call(wire, [], args)
        except (RedisError, OSError) as e:
            logger.warning("could not renew leases while the loop is blocked: %s", e)


def job_of(frame: FrameType | None) -> Any:
    """The JobResult of the job whose run `frame` is part of, if any."""
    while frame is not None:
        if frame.f_code is execution.call_task.__code__:
            return frame.f_locals.get("result")
        frame = frame.f_back
    return None
