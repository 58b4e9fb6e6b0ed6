"""Plain functions in processes (`jobs_worker --pool processes`): hard time limits.

A thread cannot be stopped, so a plain function past its timeout runs on (see
jobs.worker.threads). Here each runs in a child process instead, one job at a
time per child; a job past its timeout has its child sent SIGTERM, then SIGKILL
after KILL_GRACE, and recorded FAILED with `TimeoutError`; the child is replaced.
A job cancelled (backend.cancel(), shutdown) has its child stopped the same way.

Children come from multiprocessing's fork server, which loads Django and the
tasks once (`jobs.worker.child`), so a replacement starts in milliseconds without
forking the worker's threads and event loop. A child gets the task's path and
its JSON arguments, and sends back the return value or the exception (with its
traceback as text) over a pipe between our own processes: nothing from Redis is
ever unpickled. Tasks that take a context (progress) run in the thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from typing import Any

import psutil

from jobs.exceptions import RemoteTraceback
from jobs.worker import child

logger = logging.getLogger("jobs.worker")

KILL_GRACE = 0.5  # seconds between SIGTERM and SIGKILL of a child past its time
POLL = 0.02  # seconds between looks at a child that was told to stop


class ChildDied(Exception):
    """The process running the job died (a crash, os._exit, the OOM killer)."""


class Slot:
    """One child process and the parent's end of its pipe."""

    def __init__(self, context: Any) -> None:
        self.conn, theirs = multiprocessing.Pipe()
        self.process = context.Process(
            target=child.serve,
            args=(theirs, os.getpid()),
            name="jobs-child",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.jobs = 0  # jobs this child has run

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after KILL_GRACE; wait for the end."""
        self.process.terminate()
        for _ in range(int(KILL_GRACE / POLL)):
            if not self.process.is_alive():
                break
            await asyncio.sleep(POLL)
        else:
            self.process.kill()
        while self.process.is_alive():
            await asyncio.sleep(POLL)
        self.process.join(0)
        self.conn.close()


class Processes:
    """Run plain-function jobs in `concurrency` child processes."""

    def __init__(
        self,
        concurrency: int,
        max_jobs: int | None = None,
        max_memory: int | None = None,
    ) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload([child.__name__])
        self.concurrency = concurrency
        self.max_jobs = max_jobs  # a child is replaced after this many jobs
        self.max_memory = max_memory  # bytes of RSS above which a child is replaced
        self.idle: list[Slot] = []
        self.slots: set[Slot] = set()
        self.retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start the fork server (it loads Django: ~1 s) and the children, off
        the event loop."""
        self.idle.append(await asyncio.to_thread(Slot, self.context))
        more = (
            asyncio.to_thread(Slot, self.context) for _ in range(self.concurrency - 1)
        )
        self.idle += await asyncio.gather(*more)

    async def _slot(self) -> Slot:
        if self.idle:
            slot = self.idle.pop()
        else:  # one was stopped: its replacement (a fork, milliseconds)
            slot = await asyncio.to_thread(Slot, self.context)
        self.slots.add(slot)
        return slot

    async def call(
        self, path: str, args: list[Any], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        """Run the task at `path` in a child; TimeoutError past `timeout` seconds."""
        slot = await self._slot()
        try:
            slot.conn.send((path, args, kwargs))
            # A child the machine has not scheduled yet (a fresh fork, a busy
            # host) has not started the job: its time starts when it says so.
            await self._reply(slot)
            async with asyncio.timeout(timeout):
                ok, value, tb = await self._reply(slot)
        except BaseException:  # timed out, cancelled, or the child died
            self.slots.discard(slot)
            await asyncio.shield(slot.stop())
            raise
        self.slots.discard(slot)
        slot.jobs += 1
        if self.spent(slot):
            self.retire(slot)
        else:
            self.idle.append(slot)
        if ok:
            return value
        if tb:
            value.__cause__ = RemoteTraceback(tb)
        raise value

    def spent(self, slot: Slot) -> bool:
        """Whether `slot`'s child passed --max-jobs or --max-memory."""
        if self.max_jobs is not None and slot.jobs >= self.max_jobs:
            return True
        if self.max_memory is None:
            return False
        try:
            return bool(
                psutil.Process(slot.process.pid).memory_info().rss > self.max_memory
            )
        except psutil.Error:
            return True

    def retire(self, slot: Slot) -> None:
        """Stop an idle child in the background (a new one replaces it when needed)."""
        stopping = asyncio.ensure_future(slot.stop())
        self.retiring.add(stopping)
        stopping.add_done_callback(self.retiring.discard)

    async def _reply(self, slot: Slot) -> Any:
        """The child's next message: child.STARTED, then (ok, value, traceback)."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = slot.conn.fileno()
        loop.add_reader(fd, _set_once, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        try:
            reply = slot.conn.recv()
        except (EOFError, OSError):
            slot.process.join(1)
            raise ChildDied(
                f"The process running the job died (exit {slot.process.exitcode})."
            ) from None
        return reply

    def shutdown(self) -> None:
        """Kill the children (the worker is exiting; their jobs were handed back)."""
        for slot in [*self.idle, *self.slots]:
            if slot.process.is_alive():
                slot.process.kill()
            slot.conn.close()
        self.idle.clear()
        self.slots.clear()


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
