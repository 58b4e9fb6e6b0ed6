"""What a claim costs Redis per job: this checkout's CLAIM script beside the
one of another revision (e.g. before per-job priority), interleaved, and this
checkout's with jobs spread over priorities.

    .venv/bin/python bench/claim_cost.py --base ea1684b [--n 20000] [--rounds 5]

Redis CPU time (used_cpu_sys + used_cpu_user) per claimed job, on a Redis of
its own, not wall time, so a loaded machine skews it less than throughput;
each round runs every variant back to back, and the median of the rounds is
printed. Jobs are claimed 10 at a time, as a worker with free slots does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from scratch_redis import scratch_redis  # noqa: E402

from jobs.redis import scripts  # noqa: E402
from jobs.redis.keys import priority_prefix, queue_key  # noqa: E402
from jobs.redis.scripts import LuaScript  # noqa: E402

QUEUE = "bench"
BATCH = 10  # jobs per claim
PRIORITIES = (5, 0, -5)  # the spread variant's


def base_claim(rev: str) -> LuaScript:
    """The CLAIM script of revision `rev` (its Python module, run for the text)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:jobs/redis/scripts.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module: dict[str, object] = {"__name__": "base_scripts"}
    exec(compile(source, f"{rev}:jobs/redis/scripts.py", "exec"), module)
    claim = module["CLAIM"]
    return LuaScript(claim.source)  # type: ignore[attr-defined]


def fill(client: redis.Redis, n: int, priorities: tuple[int, ...]) -> None:
    pipe = client.pipeline(transaction=False)
    now = time.time() * 1000 - 1000
    for i in range(n):
        priority = priorities[i % len(priorities)]
        pipe.set(f"arq:job:j{i}", b'{"f":"bench.noop","a":[],"k":{},"et":0}')
        pipe.zadd(queue_key(QUEUE, priority), {f"j{i}": now + i / 1000})
        if priority:
            pipe.zadd(f"jobs:priorities:{QUEUE}", {str(priority): priority})
    pipe.execute()


def redis_cpu(client: redis.Redis) -> float:
    info = cast("dict[str, Any]", client.info("cpu"))
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def claim_all(client: redis.Redis, script: LuaScript, n: int, new: bool) -> float:
    """Redis CPU µs per job to claim `n` queued jobs, BATCH at a time."""
    keys = [queue_key(QUEUE), f"jobs:wake:{QUEUE}"]
    if new:
        keys.append(f"jobs:priorities:{QUEUE}")
    client.script_load(script.source)
    before = redis_cpu(client)
    claimed = 0
    while claimed < n:
        now = int(time.time() * 1000)
        args: list[Any] = [now, 30_000, BATCH, "bench:1:w", 88_400, 262_144]
        args.append(priority_prefix(QUEUE))
        reply = client.evalsha(script.sha, len(keys), *keys, *args)
        rows, _ = cast("list[Any]", reply)
        if not rows:
            raise RuntimeError("nothing claimed: the queue ran dry")
        claimed += len(rows)
    return (redis_cpu(client) - before) / claimed * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="revision to compare with")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    variants = {
        f"{options.base}: priority 0": (base_claim(options.base), False, (0,)),
        "this checkout: priority 0": (scripts.CLAIM, True, (0,)),
        "this checkout: 3 priorities": (scripts.CLAIM, True, PRIORITIES),
    }
    with scratch_redis() as port:
        client = redis.Redis(port=port)
        figures: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(options.rounds):
            for name, (script, new, priorities) in variants.items():
                client.flushall()
                fill(client, options.n, priorities)
                figures[name].append(claim_all(client, script, options.n, new))
        for name, values in figures.items():
            print(f"{name:32} {statistics.median(values):6.2f} µs Redis CPU / job")


if __name__ == "__main__":
    main()
