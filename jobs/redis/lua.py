"""Lua scripts run by SHA (Redis): loaded on the first NOSCRIPT (a new or
restarted Redis), run alone or followed by WAIT for replicas; and the scripts'
clock. The scripts themselves are in jobs.redis.scripts, flows, limits and
recovery.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from jobs.redis.wire import AsyncWire, SyncWire


def now_ms() -> int:
    """The scripts' clock: milliseconds since the epoch, as their ARGV carry it."""
    return time.time_ns() // 1_000_000


class LuaScript:
    """A script sent by SHA, loaded on first NOSCRIPT (e.g. after a Redis restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def command(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    async def acall(self, wire: AsyncWire, keys: list[Any], args: list[Any]) -> Any:
        try:
            return await wire.call(*self.command(keys, args))
        except NoScriptError:
            await wire.call("SCRIPT", "LOAD", self.source)
            return await wire.call(*self.command(keys, args))

    def call(self, wire: SyncWire, keys: list[Any], args: list[Any]) -> Any:
        try:
            return wire.call(*self.command(keys, args))
        except NoScriptError:
            wire.call("SCRIPT", "LOAD", self.source)
            return wire.call(*self.command(keys, args))

    # WAIT counts the replicas holding the writes of *its own connection*, so
    # the script and the WAIT go down one connection, in one pipeline. This
    # is redis-py's client, not the wire: the WAIT's replication round trip
    # is what such a call costs, not the client's bookkeeping.

    def call_replicated(
        self, client: redis.Redis, keys: list[Any], args: list[Any], wait: Wait
    ) -> tuple[Any, int]:
        """Run the script, then WAIT; its reply and the replicas that have it."""
        for _ in (1, 2):
            pipe = client.pipeline(transaction=False)
            pipe.execute_command(*self.command(keys, args))  # type: ignore[no-untyped-call]
            pipe.execute_command("WAIT", *wait)  # type: ignore[no-untyped-call]
            reply, acked = pipe.execute(raise_on_error=False)
            if not isinstance(reply, NoScriptError):
                break
            client.script_load(self.source)
        return _replicated(reply, acked)

    async def acall_replicated(
        self, client: redis.asyncio.Redis, keys: list[Any], args: list[Any], wait: Wait
    ) -> tuple[Any, int]:
        """See call_replicated()."""
        for _ in (1, 2):
            pipe = client.pipeline(transaction=False)
            pipe.execute_command(*self.command(keys, args))
            pipe.execute_command("WAIT", *wait)
            reply, acked = await pipe.execute(raise_on_error=False)
            if not isinstance(reply, NoScriptError):
                break
            await client.script_load(self.source)
        return _replicated(reply, acked)


type Wait = tuple[int, int]  # WAIT's arguments: replicas, timeout ms


def _replicated(reply: Any, acked: Any) -> tuple[Any, int]:
    for answer in (reply, acked):
        if isinstance(answer, Exception):
            raise answer
    return reply, int(acked)
