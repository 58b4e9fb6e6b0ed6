"""Redis clients: one async pool per (event loop, server), one sync pool per server.

redis.asyncio connections belong to the loop that opened them, so async clients
are kept per running loop. Sync callers (sync views, the shell, management
commands) get a plain thread-safe redis-py client instead of an event loop
spun up per call.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from arq.connections import ArqRedis
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.asyncio.connection import (
    UnixDomainSocketConnection as AsyncUnixConnection,
)
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE

from jobs import serialization
from jobs.conf import SENTINEL_SCHEME
from jobs.redis.sentinel import (
    AsyncSentinelConnection,
    AsyncSentinelPool,
    SentinelPool,
)
from jobs.redis.wire import AsyncWire, SyncWire

if TYPE_CHECKING:
    from jobs.conf import JobsOptions

# A call to Redis answers or raises within a bound, so no caller hangs on a
# Redis that accepts connections but does not answer (SIGSTOPped, swapping, a
# half-open network): each read waits at most `socket_timeout` and a timeout is
# not retried, since a second wait on a server that did not answer rarely ends
# otherwise. A broken connection (Redis restarted) is retried twice on a fresh one,
# which every script we send survives: they are idempotent, a retry cannot double
# a job. No health-check PING: redis-py nests its own retries inside it (a sync
# enqueue on a stopped Redis waited ~400 s), and the retry above finds a dead
# connection as well. REDIS_OPTIONS overrides any of these.
DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,  # seconds
    "socket_timeout": 5.0,  # seconds; blocking reads (BLPOP) block for less
    "socket_keepalive": True,
    "health_check_interval": 0,  # seconds; 0: never PING before a command
}
RETRIES = 2
RETRIED = (RedisConnectionError,)  # and never RedisTimeoutError, see above


class HiredisPacking:
    """Pack commands with hiredis, in C.

    redis-py does so in its sync client only; its asyncio client packs in Python,
    which costs ~30 µs per command: a third of an enqueue.
    """

    _packer = HiredisRespSerializer() if HIREDIS_AVAILABLE else None

    def pack_command(self, *args: Any) -> list[bytes]:
        if self._packer is None:
            return super().pack_command(*args)  # type: ignore[misc,no-any-return]
        return self._packer.pack(*args)  # type: ignore[no-any-return]


class FastConnection(HiredisPacking, AsyncConnection):
    pass


class FastSSLConnection(HiredisPacking, AsyncSSLConnection):
    pass


class FastUnixConnection(HiredisPacking, AsyncUnixConnection):
    pass


class FastSentinelConnection(HiredisPacking, AsyncSentinelConnection):
    pass


def connection_class(url: str) -> type[AsyncConnection | AsyncUnixConnection]:
    if url.startswith("rediss://"):
        return FastSSLConnection
    if url.startswith("unix://"):
        return FastUnixConnection
    if is_sentinel(url):
        return FastSentinelConnection
    return FastConnection


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME + "://")


_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ArqRedis]]
_async = weakref.WeakKeyDictionary()
_async_wires: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncWire]]
_async_wires = weakref.WeakKeyDictionary()
_sync: dict[str, redis.Redis] = {}
_sync_wires: dict[str, SyncWire] = {}
_sync_lock = threading.RLock()


def client_kwargs(options: JobsOptions, *, asyncio_: bool) -> dict[str, Any]:
    backoff = ExponentialBackoff(cap=0.5, base=0.05)
    retry_class = AsyncRetry if asyncio_ else Retry
    retry = retry_class(backoff, RETRIES, supported_errors=RETRIED)
    tls: dict[str, Any] = {}
    if options.redis_url.startswith("rediss://"):
        # redis-py checks the certificate but not, by default, the host name.
        tls = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    return {
        **DEFAULTS,
        **tls,
        "retry": retry,
        "retry_on_error": list(RETRIED),
        **options.redis_options,
    }


def socket_timeout(options: JobsOptions) -> float | None:
    """Seconds a read from Redis may wait (None: for ever)."""
    timeout = {**DEFAULTS, **options.redis_options}["socket_timeout"]
    return None if timeout is None else float(timeout)


_keys: dict[int, tuple[JobsOptions, str]] = {}  # id(options) -> (options, key)


def _key(options: JobsOptions) -> str:
    """The cache key of `options`, worked out once per options object (each
    enqueue asks for its wire)."""
    known = _keys.get(id(options))
    if known is not None and known[0] is options:
        return known[1]
    key = repr((options.redis_url, sorted(options.redis_options.items())))
    _keys[id(options)] = (options, key)  # holding `options` keeps its id unique
    return key


def _shared[T](cache: dict[str, T], options: JobsOptions, make: Callable[[], T]) -> T:
    """The object cached under these options, made once even across threads."""
    key = _key(options)
    found = cache.get(key)
    if found is None:
        with _sync_lock:
            found = cache.get(key)
            if found is None:
                found = cache[key] = make()
    return found


def async_client(options: JobsOptions) -> ArqRedis:
    """Return the pooled async client for the running loop."""
    per_loop = _async.setdefault(asyncio.get_running_loop(), {})
    return _shared(per_loop, options, lambda: new_async_client(options))


def async_wire(options: JobsOptions) -> AsyncWire:
    """Return the running loop's hot path to Redis (see jobs.redis.wire)."""
    per_loop = _async_wires.setdefault(asyncio.get_running_loop(), {})
    return _shared(
        per_loop, options, lambda: AsyncWire(async_client(options).connection_pool)
    )


def sync_client(options: JobsOptions) -> redis.Redis:
    """Return the pooled, thread-safe sync client."""
    return _shared(_sync, options, lambda: new_sync_client(options))


def new_sync_client(options: JobsOptions, **extra: Any) -> redis.Redis:
    """Open a separate sync client; `extra` overrides redis-py arguments."""
    kwargs = {**client_kwargs(options, asyncio_=False), **extra}
    if is_sentinel(options.redis_url):
        pool = SentinelPool.from_url(options.redis_url, **kwargs)
        return redis.Redis(connection_pool=pool)
    return redis.Redis.from_url(options.redis_url, **kwargs)


def sync_wire(options: JobsOptions) -> SyncWire:
    """Return the thread-safe sync hot path to Redis (see jobs.redis.wire)."""
    return _shared(
        _sync_wires, options, lambda: SyncWire(sync_client(options).connection_pool)
    )


def new_async_client(options: JobsOptions, **extra: Any) -> ArqRedis:
    """Open a separate async client (the worker's, or one for blocking reads)."""
    kwargs = {
        "connection_class": connection_class(options.redis_url),
        **client_kwargs(options, asyncio_=True),
        **extra,
    }
    client: ArqRedis
    if is_sentinel(options.redis_url):
        pool = AsyncSentinelPool.from_url(options.redis_url, **kwargs)
        client = ArqRedis(pool)
    else:
        client = ArqRedis.from_url(options.redis_url, **kwargs)
    client.job_serializer = serialization.dumps
    client.job_deserializer = serialization.loads
    return client


async def aclose_all() -> None:
    """Close the running loop's async clients (tests, shutdown)."""
    loop = asyncio.get_running_loop()
    for wire in _async_wires.pop(loop, {}).values():
        await wire.aclose()
    for client in _async.pop(loop, {}).values():
        await client.aclose(close_connection_pool=True)


def close_all() -> None:
    """Close the sync clients."""
    with _sync_lock:
        for wire in _sync_wires.values():
            wire.close()
        _sync_wires.clear()
        for client in _sync.values():
            client.close()
            client.connection_pool.disconnect()
        _sync.clear()
