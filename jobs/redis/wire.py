"""The hot path to Redis: packed commands over redis-py's own connections.

A command through a redis-py client costs ~150 µs of CPU here, of which a
third is the network call and the rest the client's bookkeeping (a pool lock, a
non-blocking read to check for stale data, three timeout contexts). Enqueueing,
claiming and finishing jobs are a few known, idempotent commands, so they skip
that layer: each call borrows an idle connection (made by the client's pool, so
TLS, ACL and timeouts are the same), writes the command packed by hiredis, reads
the reply with redis-py's parser, and returns the connection. A connection that
breaks is dropped and the command retried once on a fresh one, which is what a
restarted Redis needs; one that times out is dropped and the timeout raised (a
Redis that did not answer within `socket_timeout` would most likely keep the
retry waiting as long). Redis errors (`NOSCRIPT`, `OOM`) are raised as redis-py
raises them.

Calls made while one of the wire's round trips is in flight do not each take a
connection of their own: they wait for it and go together, as one pipeline in
one write on one connection, replies read back in order (ioredis's
auto-pipelining). So 100 `aenqueue()` in flight on one loop cost two round trips
and one connection, not 100 of each; a lone call goes at once, as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

IDLE_MAX = 32  # connections kept open for reuse; more are closed when returned
TIMED_OUT = (RedisTimeoutError, TimeoutError)  # not retried (see above)
BROKEN = (RedisConnectionError, *TIMED_OUT, OSError)  # the connection is dropped

_packer = HiredisRespSerializer()  # hiredis comes with redis[hiredis], a dependency


def pack(commands: Iterable[Sequence[Any]]) -> list[bytes]:
    """Pack commands into the Redis protocol, in one buffer."""
    return [b"".join(chunk for command in commands for chunk in _packer.pack(*command))]


class AsyncWire:
    """Commands for one event loop, over connections from `pool`."""

    def __init__(self, pool: redis.asyncio.ConnectionPool) -> None:
        self.pool = pool
        self.idle: list[Any] = []
        self.timeout = pool.connection_kwargs.get("socket_timeout")
        # Calls made while `busy` (a call's round trip in flight), sent together
        # when it ends: (packed command, the caller's future).
        self.waiting: list[tuple[list[bytes], asyncio.Future[Any]]] = []
        self.busy = False
        self.sender: asyncio.Task[None] | None = None

    async def call(self, *command: Any) -> Any:
        """Send one command and return its reply."""
        packed = _packer.pack(*command)
        if self.busy:  # ride the next pipeline, after the round trip in flight
            future = asyncio.get_running_loop().create_future()
            self.waiting.append((packed, future))
            return await future
        self.busy = True
        try:
            return await self._call(packed)
        except TIMED_OUT as error:
            self._fail_waiting(error)
            raise
        finally:
            self._next()

    def _fail_waiting(self, error: BaseException) -> None:
        """Redis did not answer in time: the calls waiting behind that round trip
        get its error now, instead of waiting as long again for their own (a
        caller waits one `socket_timeout`, not two)."""
        waiting, self.waiting = self.waiting, []
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)

    def _next(self) -> None:
        """A round trip ended: send what waited for it, or stand idle."""
        if self.waiting:
            self.sender = asyncio.create_task(self._send_waiting(), name="jobs-wire")
        else:
            self.busy = False

    async def _send_waiting(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                await self._send_batch(batch)
        finally:
            self.busy = False
            for _, future in self.waiting:  # only when cancelled: loop closing
                future.cancel()
            self.waiting = []

    async def _send_batch(
        self, batch: list[tuple[list[bytes], asyncio.Future[Any]]]
    ) -> None:
        # A caller cancelled while it waited takes its command back.
        batch = [(command, future) for command, future in batch if not future.done()]
        if not batch:
            return
        packed = [b"".join(chunk for command, _ in batch for chunk in command)]
        try:
            replies = await self._exchange(packed, len(batch))
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if isinstance(error, TIMED_OUT):
                self._fail_waiting(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _call(self, packed: list[bytes]) -> Any:
        """One command's round trip (the hot path: kept flat)."""
        for attempt in (1, 2):
            connection = self.idle.pop() if self.idle else self._new()
            try:
                async with asyncio.timeout(self.timeout):
                    await connection.send_packed_command(packed, False)
                    reply = await connection.read_response()
            except ResponseError:
                self._give_back(connection)
                raise
            except BROKEN as error:
                await connection.disconnect()
                if attempt == 2 or isinstance(error, TIMED_OUT):
                    raise
                continue
            except BaseException:
                await connection.disconnect()
                raise
            self._give_back(connection)
            return reply
        raise AssertionError("unreachable")

    async def call_many(
        self, commands: Sequence[Sequence[Any]], *, raise_on_error: bool = False
    ) -> list[Any]:
        """Send commands in one write; return their replies (or errors) in order."""
        replies = await self._exchange(pack(commands), len(commands))
        return _checked(replies, raise_on_error)

    async def _exchange(self, packed: list[bytes], count: int) -> list[Any]:
        """Write `packed` on one connection, read `count` replies (or errors)."""
        for attempt in (1, 2):
            connection = self.idle.pop() if self.idle else self._new()
            try:
                # One deadline for the whole exchange, instead of redis-py's
                # timeout around each write and each read.
                async with asyncio.timeout(self.timeout):
                    await connection.send_packed_command(packed, check_health=False)
                    replies = [await self._reply(connection) for _ in range(count)]
            except BROKEN as error:
                await connection.disconnect()
                if attempt == 2 or isinstance(error, TIMED_OUT):
                    raise
                continue
            except BaseException:  # cancelled mid-read: the stream is out of step
                await connection.disconnect()
                raise
            self._give_back(connection)
            return replies
        raise AssertionError("unreachable")

    def _new(self) -> Any:
        kwargs = {**self.pool.connection_kwargs, "socket_timeout": None}
        return self.pool.connection_class(**kwargs)

    @staticmethod
    async def _reply(connection: Any) -> Any:
        try:
            return await connection.read_response()
        except ResponseError as error:
            return error

    def _give_back(self, connection: Any) -> None:
        if len(self.idle) < IDLE_MAX:
            self.idle.append(connection)
        else:
            connection._close()  # no await needed: closes the transport

    async def aclose(self) -> None:
        if self.sender is not None:
            await asyncio.gather(self.sender, return_exceptions=True)
        idle, self.idle = self.idle, []
        for connection in idle:
            await connection.disconnect()


class SyncWire:
    """See AsyncWire; thread-safe, for sync views, the shell and commands."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self.idle: list[Any] = []
        self.lock = threading.Lock()

    def call(self, *command: Any) -> Any:
        packed = pack([command])
        for attempt in (1, 2):
            with self.lock:
                connection = (
                    self.idle.pop() if self.idle else self.pool.make_connection()
                )
            try:
                connection.send_packed_command(packed, check_health=False)
                reply = connection.read_response()
            except ResponseError:
                self._give_back(connection)
                raise
            except BROKEN as error:
                connection.disconnect()
                if attempt == 2 or isinstance(error, TIMED_OUT):
                    raise
                continue
            except BaseException:
                connection.disconnect()
                raise
            self._give_back(connection)
            return reply
        raise AssertionError("unreachable")

    def _give_back(self, connection: Any) -> None:
        with self.lock:
            if len(self.idle) < IDLE_MAX:
                self.idle.append(connection)
                return
        connection.disconnect()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for connection in idle:
            connection.disconnect()


def _checked(replies: list[Any], raise_on_error: bool) -> list[Any]:
    if raise_on_error:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
    return replies
