"""One pipeline for the writes of every job in a worker, in the order they were made.

redis-py's asyncio client spends ~100 µs of CPU on each command around the
network call (pool, locks, timeouts); a worker finishing thousands of jobs a second
would spend most of its time there. The batcher sends whatever commands the jobs
made since the last round trip as one pipeline, with one batch in flight at a
time: commands reach Redis in the order they were made, so a job's RUNNING write
(sent without waiting) always lands before its result.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from jobs.redis import flows, scripts

if TYPE_CHECKING:
    from jobs.redis.wire import AsyncWire

logger = logging.getLogger("jobs.worker")


class CommandBatcher:
    """Send commands in pipelines, one in flight at a time, preserving order."""

    def __init__(self, wire: AsyncWire) -> None:
        self.wire = wire
        self.pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self.sender: asyncio.Task[None] | None = None

    def send(self, *command: Any) -> asyncio.Future[Any]:
        """Queue a command; the future gets its reply (or its error)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((command, future))
        if self.sender is None or self.sender.done():
            self.sender = asyncio.create_task(self._send_all(), name="jobs-batcher")
        return future

    def script(
        self, script: scripts.LuaScript, keys: list[Any], args: list[Any]
    ) -> asyncio.Future[Any]:
        return self.send(*script.command(keys, args))

    async def _send_all(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            await self._send(batch)

    async def _send(
        self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]
    ) -> None:
        try:
            replies = await self._pipeline([command for command, _ in batch])
            refused = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if refused:
                # Redis restarted and forgot the scripts: load them and send again
                # the commands it refused, in order; the others ran (a CLAIM run
                # twice would lease jobs that nobody runs).
                await self._load_scripts()
                again = await self._pipeline([batch[i][0] for i in refused])
                for i, reply in zip(refused, again, strict=True):
                    replies[i] = reply
        except Exception as error:  # the whole batch failed: Redis away
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        return await self.wire.call_many(commands)

    async def _load_scripts(self) -> None:
        every = (*scripts.ALL, *flows.ALL)
        await self.wire.call_many([("SCRIPT", "LOAD", s.source) for s in every])

    async def close(self) -> None:
        """Wait for what is queued to be sent."""
        if self.sender is not None:
            await asyncio.gather(self.sender, return_exceptions=True)
