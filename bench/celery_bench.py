"""Celery with the Redis broker (kombu), default settings otherwise.

Run: python celery_bench.py run --config celery-prefork-c2 [--n 10000]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jobside
from celery import Celery, group

SYSTEM = "celery"
CONFIGS = {
    # Celery's out-of-the-box worker: prefork pool, concurrency = 2 (= cores),
    # no result backend.
    "celery-prefork-c2": {"pool": "prefork", "concurrency": 2, "results": False},
    # Same, with the Redis result backend most Django deployments add
    # (django-celery-results aside).
    "celery-prefork-c2-results": {"pool": "prefork", "concurrency": 2, "results": True},
    "celery-threads-c10": {"pool": "threads", "concurrency": 10, "results": False},
    "celery-gevent-c100": {"pool": "gevent", "concurrency": 100, "results": False},
}
BATCH_KIND = "group() of 100 signatures"
# Result-wait phase (configs with "results": True): `AsyncResult.get()`.
WAITS = True
WAIT_TIMEOUT = 30.0

_cfg = CONFIGS.get(os.environ.get("BENCH_CONFIG", ""), {})
app = Celery(
    "bench",
    broker=jobside.LIB_URL,
    backend=jobside.LIB_RESULTS_URL if _cfg.get("results") else None,
)
app.conf.broker_connection_retry_on_startup = True


@app.task(name="bench.noop")
def noop() -> None:
    jobside.done_sync()


@app.task(name="bench.lat")
def lat(i: int) -> None:
    jobside.started_sync(i)


@app.task(name="bench.waited")
def waited(i: int) -> float:
    return jobside.finish_stamp()


def worker_commands(cfg: dict) -> list[list[str]]:
    celery_bin = str(Path(sys.executable).parent / "celery")
    return [
        [
            celery_bin,
            "-A",
            "celery_bench",
            "worker",
            "-P",
            cfg["pool"],
            "-c",
            str(cfg["concurrency"]),
            "-l",
            "WARNING",
        ]
    ]


class Producer:
    def single(self) -> None:
        noop.delay()

    def batch(self, k: int) -> None:
        group(noop.s() for _ in range(k)).apply_async()

    def lat(self, i: int) -> None:
        lat.delay(i)

    def wait(self, i: int) -> float:
        return waited.delay(i).get(timeout=WAIT_TIMEOUT)

    def close(self) -> None:
        app.close()


def make_producer(cfg: dict) -> Producer:
    return Producer()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness

    harness.main("celery_bench")
