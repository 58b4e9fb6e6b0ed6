"""BullMQ (Node) under the same harness: worker bullmq/worker.mjs, producer
bullmq/producer.mjs (see native.py), the same job as jobside.py's (an INCR on
the harness Redis). Installed by setup_ext.sh (npm ci of bullmq and ioredis
into bullmq/node_modules); runs from the project's .venv like jobs_bench.py.

Run: ../.venv/bin/python bullmq_bench.py run --config bullmq-c100 [--n 10000]
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import native
from native import config_json

SYSTEM = "bullmq"
NATIVE_DIR = Path(__file__).resolve().parent / "bullmq"
NODE = "node"

CONFIGS = {
    # One worker process, 100 jobs at once (jobs-c100's and arq-mj100's
    # concurrency); completed jobs and their return values kept, BullMQ's
    # default (removeOnComplete unset), as django-jobs keeps its results.
    "bullmq-c100": {"concurrency": 100},
    # The same, jobs added with removeOnComplete: true (nothing kept).
    "bullmq-c100-roc": {"concurrency": 100, "removeOnComplete": True},
    # BullMQ's defaults: concurrency 1, completed jobs kept.
    "bullmq-default": {},
}
# "100 concurrent" as the Python asyncio producers do it: 100 add() calls in
# flight on one event loop, repeated; addBulk() is the bulk API.
BATCH_KIND = "Promise.all of 100 queue.add()"
BULK_KIND = "queue.addBulk() of 100"
THREADS = False  # Node runs JavaScript on one thread: no threaded enqueue
WAITS = False


def worker_commands(cfg: dict) -> list[list[str]]:
    return [[NODE, str(NATIVE_DIR / "worker.mjs"), config_json(cfg)]]


def producer_command(cfg: dict) -> list[str]:
    return [NODE, str(NATIVE_DIR / "producer.mjs"), config_json(cfg)]


def versions() -> dict[str, str]:
    def pkg(name: str) -> str:
        meta = NATIVE_DIR / "node_modules" / name / "package.json"
        return str(json.loads(meta.read_text())["version"])

    node = subprocess.run([NODE, "--version"], capture_output=True, text=True)
    names = ("bullmq", "ioredis", "msgpackr")
    return {"node": node.stdout.strip(), **{name: pkg(name) for name in names}}


if __name__ == "__main__":
    native.main("bullmq_bench", versions)
