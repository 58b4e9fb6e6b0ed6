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
from typing import TYPE_CHECKING, Any

import redis
from arq.connections import ArqRedis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs import serialization

if TYPE_CHECKING:
    from jobs.conf import JobsOptions

# Fail fast when Redis is away (an enqueue must raise, not hang) and retry twice on
# a fresh connection, which is what a restarted Redis needs. Every script we send
# is idempotent, so a retry cannot double a job.
DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,  # seconds
    "socket_timeout": 15.0,  # seconds; above the longest BLPOP block
    "socket_keepalive": True,
    "health_check_interval": 15,  # seconds; re-checks connections idle that long
}
RETRIES = 2

_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ArqRedis]]
_async = weakref.WeakKeyDictionary()
_sync: dict[str, redis.Redis] = {}
_sync_lock = threading.Lock()


def client_kwargs(options: JobsOptions, *, asyncio_: bool) -> dict[str, Any]:
    if asyncio_:
        from redis.asyncio.retry import Retry as AsyncRetry

        retry: Any = AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), RETRIES)
    else:
        from redis.retry import Retry

        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), RETRIES)
    tls: dict[str, Any] = {}
    if options.redis_url.startswith("rediss://"):
        # redis-py checks the certificate but not, by default, the host name.
        tls = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    return {
        **DEFAULTS,
        **tls,
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        **options.redis_options,
    }


def _key(options: JobsOptions) -> str:
    return repr((options.redis_url, sorted(options.redis_options.items())))


def async_client(options: JobsOptions) -> ArqRedis:
    """Return the pooled async client for the running loop."""
    loop = asyncio.get_running_loop()
    per_loop = _async.setdefault(loop, {})
    key = _key(options)
    client = per_loop.get(key)
    if client is None:
        client = new_async_client(options)
        per_loop[key] = client
    return client


def new_async_client(options: JobsOptions, **extra: Any) -> ArqRedis:
    """Open a separate async client (the worker's, or one for blocking reads)."""
    client: ArqRedis = ArqRedis.from_url(
        options.redis_url, **client_kwargs(options, asyncio_=True), **extra
    )
    client.job_serializer = serialization.dumps
    client.job_deserializer = serialization.loads
    return client


def sync_client(options: JobsOptions) -> redis.Redis:
    """Return the pooled, thread-safe sync client."""
    key = _key(options)
    client = _sync.get(key)
    if client is None:
        with _sync_lock:
            client = _sync.get(key)
            if client is None:
                client = redis.Redis.from_url(
                    options.redis_url, **client_kwargs(options, asyncio_=False)
                )
                _sync[key] = client
    return client


async def aclose_all() -> None:
    """Close the running loop's async clients (tests, shutdown)."""
    loop = asyncio.get_running_loop()
    for client in _async.pop(loop, {}).values():
        await client.aclose(close_connection_pool=True)


def close_all() -> None:
    """Close the sync clients."""
    with _sync_lock:
        for client in _sync.values():
            client.close()
            client.connection_pool.disconnect()
        _sync.clear()
