"""Schedules' run counts, as Redis keeps them until the database has them.

The script that queues a run adds one to the schedule's total in Redis, a
total that only grows. The database keeps, beside `Schedule.run_count`, the
total it last took in (`runs_counted`) and the epoch of the Redis hash it came
from (`runs_epoch`): adding `total - runs_counted` is then the same write
however often it is repeated, so a worker killed between reading Redis and
committing loses nothing, and nothing is counted twice when the next worker
writes it again. A Redis that lost the hash starts a new epoch, taken as a
count from zero.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Totals:
    """Redis's totals of runs by Schedule pk, of the hash begun at `epoch` (us)."""

    epoch: int
    runs: dict[int, int]
