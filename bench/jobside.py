"""What every benchmark job does inside the worker, identical for all systems.

The jobs talk to a *separate* "harness" Redis instance, so that the INFO
commandstats of the broker Redis only ever show the library's own commands.

* ``noop`` jobs INCR one counter. The job whose INCR returns a multiple of
  BENCH_N stamps ``bench:done`` (so the harness learns the exact moment the
  last job of a batch finished, without polling); the job whose INCR returns
  ``k*N + 1`` stamps ``bench:first`` (first completion of a batch).
* ``lat`` jobs write their own start time into the ``bench:lat`` hash under the
  index the producer gave them.
* ``waited`` jobs (result-wait phase; django-jobs' bench adds this) return
  ``finish_stamp()`` as their last act: the producer that waits for the result
  gets the job's own finish time with it and subtracts it from its wake-up.

Timestamps are CLOCK_MONOTONIC (``time.monotonic()``), which on Linux is one
clock for every process on the machine, so producer and worker stamps can be
subtracted directly.
"""

from __future__ import annotations

import asyncio
import os
import time

import redis
import redis.asyncio as aredis

HOST = os.environ.get("BENCH_HOST", "127.0.0.1")
LIB_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6390"))
HARNESS_PORT = int(os.environ.get("BENCH_HARNESS_PORT", "6391"))
LIB_URL = f"redis://{HOST}:{LIB_PORT}/0"
LIB_RESULTS_URL = f"redis://{HOST}:{LIB_PORT}/1"
HARNESS_URL = f"redis://{HOST}:{HARNESS_PORT}/0"

K_COUNT = "bench:count"
K_FIRST = "bench:first"
K_DONE = "bench:done"
K_LAT = "bench:lat"

_N = int(os.environ.get("BENCH_N", "0") or 0)


def _marks(count: int) -> list[str]:
    keys = []
    if _N and count % _N == 0:
        keys.append(K_DONE)
    if _N > 1 and count % _N == 1:
        keys.append(K_FIRST)
    return keys


# --- synchronous workers (celery, rq, dramatiq) -----------------------------
# One client per process, created lazily *after* any fork (prefork pools, rq
# work horses) so that no socket is shared between processes.
_sync_client: redis.Redis | None = None
_sync_pid: int | None = None


def _sync() -> redis.Redis:
    global _sync_client, _sync_pid
    if _sync_client is None or _sync_pid != os.getpid():
        _sync_client = redis.Redis.from_url(HARNESS_URL)
        _sync_pid = os.getpid()
    return _sync_client


def done_sync() -> None:
    client = _sync()
    count = client.incr(K_COUNT)
    now = time.monotonic()
    for key in _marks(count):
        client.lpush(key, repr(now))


def started_sync(i: int) -> None:
    _sync().hset(K_LAT, str(i), repr(time.monotonic()))


# --- asyncio workers (arq, taskiq, saq) -------------------------------------
_async_clients: dict[tuple[int, int], aredis.Redis] = {}


def _async() -> aredis.Redis:
    key = (os.getpid(), id(asyncio.get_running_loop()))
    client = _async_clients.get(key)
    if client is None:
        client = aredis.Redis.from_url(HARNESS_URL)
        _async_clients[key] = client
    return client


async def done_async() -> None:
    client = _async()
    count = await client.incr(K_COUNT)
    now = time.monotonic()
    for key in _marks(count):
        await client.lpush(key, repr(now))


async def started_async(i: int) -> None:
    await _async().hset(K_LAT, str(i), repr(time.monotonic()))


# --- every system ------------------------------------------------------------
def finish_stamp() -> float:
    """What a ``waited`` job returns: the moment it finished (no I/O after it)."""
    return time.monotonic()
