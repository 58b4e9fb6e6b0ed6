"""SAQ with its Redis queue; `saq` CLI with its defaults (1 worker process,
concurrency 10, plain asyncio loop: saq does not install uvloop itself).

saq's redis extra pins redis<8 while taskiq-redis needs redis>=8, so saq runs
from its own virtualenv (see README).

Run: python saq_bench.py run --config saq-default [--n 10000]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jobside
from saq import Queue

SYSTEM = "saq"
CONFIGS = {
    "saq-default": {"workers": 1, "concurrency": 10},
}
BATCH_KIND = "asyncio.gather of 100 enqueue()"


async def noop(ctx: dict[str, Any]) -> None:
    await jobside.done_async()


async def lat(ctx: dict[str, Any], *, i: int) -> None:
    await jobside.started_async(i)


queue = Queue.from_url(jobside.LIB_URL)
settings = {
    "queue": queue,
    "functions": [noop, lat],
    "concurrency": CONFIGS["saq-default"]["concurrency"],
}


def worker_commands(cfg: dict) -> list[list[str]]:
    saq_bin = str(Path(sys.executable).parent / "saq")
    return [[saq_bin, "--workers", str(cfg["workers"]), "saq_bench.settings"]]


class Producer:
    def __init__(self, q) -> None:
        self.q = q

    async def single(self) -> None:
        await self.q.enqueue("noop")

    async def lat(self, i: int) -> None:
        await self.q.enqueue("lat", i=i)

    async def close(self) -> None:
        await self.q.disconnect()


async def make_producer(cfg: dict) -> Producer:
    q = Queue.from_url(jobside.LIB_URL)
    await q.connect()
    return Producer(q)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness

    harness.main("saq_bench")
