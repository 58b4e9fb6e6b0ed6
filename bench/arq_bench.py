"""arq worker(s) on uvloop, started through our own launcher (``worker``
sub-command) so that the event loop is uvloop; settings are arq's defaults
except ``max_jobs`` (and the number of worker processes).

arq pins redis<6, so this runs from its own virtualenv (see README).

Run: python arq_bench.py run --config arq-default [--n 10000]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import jobside

SYSTEM = "arq"
CONFIGS = {
    # arq defaults: max_jobs=10, poll_delay=0.5 s,
    # queue_read_limit=max(5*max_jobs, 100), keep_result=3600 s.
    "arq-default": {"max_jobs": 10, "procs": 1},
    "arq-mj100": {"max_jobs": 100, "procs": 1},
    # Two worker processes, to use both cores as the multi-process peers do.
    "arq-mj100-x2": {"max_jobs": 100, "procs": 2},
    # Tuned (not a default): poll the queue every 50 ms instead of 500 ms.
    "arq-mj100-poll50ms": {"max_jobs": 100, "procs": 1, "poll_delay": 0.05},
    "arq-mj100-poll50ms-x2": {"max_jobs": 100, "procs": 2, "poll_delay": 0.05},
}
BATCH_KIND = "asyncio.gather of 100 enqueue_job()"
# Result-wait phase: `await job.result()` (arq keeps every result, polled every
# 0.5 s by default).
WAITS = True
WAIT_TIMEOUT = 30.0


async def noop(ctx: dict[str, Any]) -> None:
    await jobside.done_async()


async def lat(ctx: dict[str, Any], i: int) -> None:
    await jobside.started_async(i)


async def waited(ctx: dict[str, Any], i: int) -> float:
    return jobside.finish_stamp()


def _redis_settings():
    from arq.connections import RedisSettings

    return RedisSettings(host=jobside.HOST, port=jobside.LIB_PORT, database=0)


def worker_commands(cfg: dict) -> list[list[str]]:
    script = str(Path(__file__).resolve())
    return [
        [sys.executable, script, "worker", "--config", cfg["_name"]]
        for _ in range(cfg["procs"])
    ]


def worker_main(cfg: dict) -> None:
    import uvloop
    from arq.worker import run_worker

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)

    class WorkerSettings:
        functions = [noop, lat, waited]
        redis_settings = _redis_settings()
        max_jobs = cfg["max_jobs"]

    if "poll_delay" in cfg:
        WorkerSettings.poll_delay = cfg["poll_delay"]
    print(
        f"arq worker starting: loop={type(loop).__module__}.{type(loop).__name__} "
        f"max_jobs={cfg['max_jobs']} "
        f"poll_delay={getattr(WorkerSettings, 'poll_delay', 'default')}",
        flush=True,
    )
    run_worker(WorkerSettings)


class Producer:
    def __init__(self, pool) -> None:
        self.pool = pool

    async def single(self) -> None:
        await self.pool.enqueue_job("noop")

    async def lat(self, i: int) -> None:
        await self.pool.enqueue_job("lat", i)

    async def wait(self, i: int) -> float:
        job = await self.pool.enqueue_job("waited", i)
        return await job.result(timeout=WAIT_TIMEOUT)

    async def close(self) -> None:
        await self.pool.aclose()


async def make_producer(cfg: dict) -> Producer:
    from arq import create_pool

    return Producer(await create_pool(_redis_settings()))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness

    harness.main("arq_bench")
