"""What WAIT_REPLICAS costs an enqueue: a master and one replica on loopback.

Starts its own redis-server pair (free ports, no persistence), then enqueues a
no-op job from one thread, N times per round, alternating rounds without and
with `WAIT_REPLICAS: 1` (so a noisy moment hits both), and prints the median
and p99 latency of each, over all rounds.

    .venv/bin/python bench/replicas_bench.py --n 5000 --rounds 6
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django
import redis
from django.conf import settings
from django.test import override_settings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(*extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    proc = subprocess.Popen(
        ["redis-server", *args, "no", "--dir", tempfile.mkdtemp(), *extra],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.02)
    raise SystemExit(f"redis-server did not start on {port}")


def tasks_for(url: str, wait: int) -> dict[str, object]:
    options = {"REDIS_URL": url, "IMPORTS": ["bench_tasks"], "WAIT_REPLICAS": wait}
    return {"default": {"BACKEND": "jobs.backend.JobsBackend", "OPTIONS": options}}


def one_round(url: str, wait: int, n: int) -> list[float]:
    import bench_tasks

    with override_settings(TASKS=tasks_for(url, wait)):
        for _ in range(200):  # warm: connections, scripts, validation
            bench_tasks.noop.enqueue()
        took = []
        for _ in range(n):
            start = time.perf_counter()
            bench_tasks.noop.enqueue()
            took.append(time.perf_counter() - start)
    redis.Redis.from_url(url).flushall()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=6)
    n, rounds = parser.parse_args().n, parser.parse_args().rounds
    master, port = start_redis("--repl-diskless-sync-delay", "0")
    replica, _ = start_redis("--replicaof", "127.0.0.1", str(port))
    url = f"redis://127.0.0.1:{port}/0"
    settings.configure(INSTALLED_APPS=["jobs"], TASKS=tasks_for(url, 0), USE_TZ=True)
    django.setup()
    time.sleep(1)  # the replica's first sync
    took: dict[int, list[float]] = {0: [], 1: []}
    try:
        for _ in range(rounds):
            for wait in (0, 1):
                took[wait] += one_round(url, wait, n)
    finally:
        for proc in (replica, master):
            proc.kill()
    for wait, times in took.items():
        times.sort()
        p50 = statistics.median(times) * 1e6
        p99 = times[int(len(times) * 0.99)] * 1e6
        print(
            f"WAIT_REPLICAS {wait}: p50 {p50:.0f} us, p99 {p99:.0f} us ({len(times)})"
        )


if __name__ == "__main__":
    main()
