"""What ARQ_RESULTS costs a job: the worker's CPU to encode arq's result record
and Redis' CPU for FINISH with and without it, interleaved.

    .venv/bin/python bench/arq_results_cost.py [--n 20000] [--rounds 5]

CPU time (process_time in the worker, used_cpu_* in Redis), not wall time, so
a loaded machine skews it less than throughput; each round measures both
variants back to back, and the median of the rounds is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

import django  # noqa: E402
import redis  # noqa: E402
from scratch_redis import scratch_redis  # noqa: E402

django.setup()

from jobs.records import arq_result, encode  # noqa: E402
from jobs.redis import scripts  # noqa: E402
from jobs.redis.wire import SyncWire  # noqa: E402

RECORD = {
    "id": "0" * 32,
    "status": "SUCCESSFUL",
    "task": "bench_tasks.noop",
    "backend": "default",
    "args": [],
    "kwargs": {},
    "enqueued_at": "2026-12-02T13:00:00.123456+00:00",
    "started_at": "2026-12-02T13:00:00.223456+00:00",
    "finished_at": "2026-12-02T13:00:00.323456+00:00",
    "last_attempted_at": "2026-12-02T13:00:00.223456+00:00",
    "errors": [],
    "worker_ids": ["host:123:abcdef12"],
    "queue": "default",
    "return_value": None,
}

# The datetimes the worker stamped RECORD from, as it hands them to arq_result.
TIMES = (
    datetime.fromisoformat("2026-12-02T13:00:00.123456+00:00"),
    datetime.fromisoformat("2026-12-02T13:00:00.223456+00:00"),
    datetime.fromisoformat("2026-12-02T13:00:00.323456+00:00"),
)


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def finish_all(
    wire: SyncWire, client: redis.Redis, n: int, arq: bool
) -> tuple[float, float]:
    """Worker µs (encoding) and Redis µs (FINISH) per job."""
    record = encode(RECORD)
    before_redis = redis_cpu(client)
    worker = 0.0
    for i in range(n):
        job_id = f"{i:032d}"
        start = time.process_time()
        extra = arq_result(RECORD, 1, "arq:queue", TIMES) if arq else b""
        worker += time.process_time() - start
        keys = [
            "arq:queue",
            f"jobs:result:{job_id}",
            f"arq:result:{job_id}" if arq else "",
        ]
        args = [job_id, "w", record, 86_400_000, 1, extra]
        scripts.FINISH.call(wire, keys, args)
    redis_us = (redis_cpu(client) - before_redis) / n * 1e6
    return worker / n * 1e6, redis_us


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with scratch_redis() as port:
        client = redis.Redis(port=port)
        wire = SyncWire(client.connection_pool)
        rows: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(options.rounds):
            for arq in (False, True):
                client.flushall()
                rows[arq].append(finish_all(wire, client, options.n, arq))
        for arq, label in ((False, "ARQ_RESULTS off"), (True, "ARQ_RESULTS on ")):
            worker = statistics.median(r[0] for r in rows[arq])
            server_us = statistics.median(r[1] for r in rows[arq])
            costs = f"worker {worker:5.1f} µs/job encoding, Redis {server_us:5.1f}"
            print(f"{label}: {costs} µs/job FINISH")


if __name__ == "__main__":
    main()
