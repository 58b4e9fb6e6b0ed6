"""taskiq with taskiq-redis. `taskiq worker` defaults: 2 worker processes,
max 100 async tasks each, uvloop when installed (it is), no result backend.

Run: python taskiq_bench.py run --config taskiq-stream [--n 10000]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jobside
from taskiq_redis import ListQueueBroker, RedisStreamBroker

SYSTEM = "taskiq"
CONFIGS = {
    # The broker taskiq-redis's README leads with (acknowledgements, XREADGROUP).
    "taskiq-stream": {"broker": "stream"},
    # The plain LPUSH/BRPOP broker (no acknowledgements).
    "taskiq-list": {"broker": "list"},
}
BATCH_KIND = "asyncio.gather of 100 .kiq()"

_kind = CONFIGS.get(os.environ.get("BENCH_CONFIG", ""), {}).get("broker", "stream")
broker = (
    RedisStreamBroker(url=jobside.LIB_URL)
    if _kind == "stream"
    else ListQueueBroker(url=jobside.LIB_URL)
)


@broker.task(task_name="noop")
async def noop() -> None:
    await jobside.done_async()


@broker.task(task_name="lat")
async def lat(i: int) -> None:
    await jobside.started_async(i)


def worker_commands(cfg: dict) -> list[list[str]]:
    taskiq_bin = str(Path(sys.executable).parent / "taskiq")
    return [[taskiq_bin, "worker", "taskiq_bench:broker", "--log-level", "WARNING"]]


class Producer:
    def __init__(self, mod) -> None:
        self.mod = mod

    async def single(self) -> None:
        await self.mod.noop.kiq()

    async def lat(self, i: int) -> None:
        await self.mod.lat.kiq(i)

    async def close(self) -> None:
        await self.mod.broker.shutdown()


async def make_producer(cfg: dict) -> Producer:
    import taskiq_bench

    # Client-side startup; for the stream broker this also declares the
    # consumer group, so jobs enqueued before any worker exists are kept.
    await taskiq_bench.broker.startup()
    return Producer(taskiq_bench)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness

    harness.main("taskiq_bench")
