"""Dramatiq with its RedisBroker and default middleware; `dramatiq` CLI with
2 processes x 8 threads (its defaults on a 2-core machine).

Run: python dramatiq_bench.py run --config dramatiq-p2-t8 [--n 10000]
"""

from __future__ import annotations

import sys
from pathlib import Path

import dramatiq
import jobside
from dramatiq.brokers.redis import RedisBroker

SYSTEM = "dramatiq"
CONFIGS = {
    "dramatiq-p2-t8": {"processes": 2, "threads": 8},
}
BATCH_KIND = None  # no batch/pipelined enqueue API for RedisBroker

broker = RedisBroker(url=jobside.LIB_URL)
dramatiq.set_broker(broker)


@dramatiq.actor
def noop() -> None:
    jobside.done_sync()


@dramatiq.actor
def lat(i: int) -> None:
    jobside.started_sync(i)


def worker_commands(cfg: dict) -> list[list[str]]:
    dramatiq_bin = str(Path(sys.executable).parent / "dramatiq")
    return [
        [
            dramatiq_bin,
            "dramatiq_bench",
            "--processes",
            str(cfg["processes"]),
            "--threads",
            str(cfg["threads"]),
        ]
    ]


class Producer:
    def __init__(self) -> None:
        import dramatiq_bench

        self.mod = dramatiq_bench

    def single(self) -> None:
        self.mod.noop.send()

    def lat(self, i: int) -> None:
        self.mod.lat.send(i)

    def close(self) -> None:
        self.mod.broker.close()


def make_producer(cfg: dict) -> Producer:
    return Producer()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness

    harness.main("dramatiq_bench")
