"""The hot path to Redis: packed commands over redis-py's own connections.

A command through a redis-py client costs ~150 µs of CPU here, of which a
third is the network call and the rest the client's bookkeeping (a pool lock, a
non-blocking read to check for stale data, three timeout contexts). Enqueueing,
claiming and finishing jobs are a few known, idempotent commands, so they skip
that layer: each call borrows an idle connection (made by the client's pool, so
TLS, ACL and timeouts are the same), writes the command packed by hiredis, reads
the reply with redis-py's parser, and returns the connection. A connection that
fails is dropped and the command retried once on a fresh one, which is what a
restarted Redis needs; Redis errors (`NOSCRIPT`, `OOM`) are raised as redis-py
raises them.
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
BROKEN = (RedisConnectionError, RedisTimeoutError, OSError)

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

    async def call(self, *command: Any) -> Any:
        """Send one command and return its reply (the hot path: kept flat)."""
        packed = _packer.pack(*command)
        for attempt in (1, 2):
            connection = self.idle.pop() if self.idle else self._new()
            try:
                async with asyncio.timeout(self.timeout):
                    await connection.send_packed_command(packed, False)
                    reply = await connection.read_response()
            except ResponseError:
                self._give_back(connection)
                raise
            except (*BROKEN, TimeoutError):
                await connection.disconnect()
                if attempt == 2:
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
        packed = pack(commands)
        for attempt in (1, 2):
            connection = self.idle.pop() if self.idle else self._new()
            try:
                # One deadline for the whole exchange, instead of redis-py's
                # timeout around each write and each read.
                async with asyncio.timeout(self.timeout):
                    await connection.send_packed_command(packed, check_health=False)
                    replies = [await self._reply(connection) for _ in commands]
            except (*BROKEN, TimeoutError):
                await connection.disconnect()
                if attempt == 2:
                    raise
                continue
            except BaseException:  # cancelled mid-read: the stream is out of step
                await connection.disconnect()
                raise
            self._give_back(connection)
            return _checked(replies, raise_on_error)
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
            except BROKEN:
                connection.disconnect()
                if attempt == 2:
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
