"""Job counts and durations per task, for Prometheus.

Each worker counts locally and adds its counts to the `jobs:metrics` hash on every
heartbeat (one pipeline), so the hash holds totals across workers and restarts
of workers. Fields:

    count|<task>|<status>   runs ended with SUCCESSFUL, FAILED or RETRIED
    bucket|<task>|<le>      runs that took more than the bound below `le` and at
                            most `le` seconds (one field per run; an exporter
                            sums them into Prometheus' cumulative buckets)
    sum|<task>              seconds spent running, in all
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from jobs.redis.keys import METRICS_KEY

if TYPE_CHECKING:
    from redis.asyncio import Redis

# seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BUCKET_NAMES = (*(str(float(le)) for le in BUCKETS), "+Inf")


class JobMetrics:
    """Counts kept by one worker until its next heartbeat."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def observe(self, task: str, status: str, seconds: float | None) -> None:
        self.counts[f"count|{task}|{status}"] += 1
        if seconds is None:
            return
        le = BUCKET_NAMES[bisect_left(BUCKETS, seconds)]
        self.counts[f"bucket|{task}|{le}"] += 1
        self.seconds[f"sum|{task}"] += seconds

    async def flush(self, client: Redis) -> None:
        """Add the counts to Redis; on failure they are kept for the next beat."""
        if not self.counts:
            return
        counts, seconds = self.counts, self.seconds
        self.counts, self.seconds = Counter(), defaultdict(float)
        try:
            async with client.pipeline(transaction=True) as pipe:
                for field, value in counts.items():
                    pipe.hincrby(METRICS_KEY, field, value)
                for field, total in seconds.items():
                    pipe.hincrbyfloat(METRICS_KEY, field, total)
                await pipe.execute()
        except BaseException:
            self.counts.update(counts)
            for field, total in seconds.items():
                self.seconds[field] += total
            raise
