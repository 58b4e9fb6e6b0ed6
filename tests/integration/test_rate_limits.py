"""Rate limits: a task's starts spaced out across workers; jobs over the limit
wait in the queue, holding no worker slot, and their wait is no attempt."""

from __future__ import annotations

import pytest
from django.tasks.base import TaskResultStatus
from django.test import override_settings

from jobs.exceptions import WorkerError
from jobs.testing import adrain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def starts(r) -> list[tuple[str, float]]:
    rows = [row.decode().split() for row in r.lrange("test:rated", 0, -1)]
    return [(label, float(at)) for label, at in rows]


async def test_jobs_over_the_limit_wait_their_turn_without_holding_a_slot(r):
    rated = [await tasks.rated.aenqueue(f"r{i}") for i in range(4)]
    plain = await tasks.in_order.aenqueue("plain")
    await adrain(concurrency=1)
    runs = starts(r)
    assert [label for label, _ in runs] == ["r0", "r1", "r2", "r3"]
    # 10/s: the k-th start comes k turns of 100 ms after the first at the
    # earliest (a job that starts late does not delay the next one's turn).
    first = runs[0][1]
    assert all(at - first >= k * 0.1 - 0.01 for k, (_, at) in enumerate(runs))
    # With one slot, the plain job ran while the rated ones waited their turn.
    assert r.lrange("test:order", 0, -1) == [b"plain"]
    for result in [*rated, plain]:
        await result.arefresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.attempts == 1  # waiting was not an attempt


async def test_the_setting_overrides_or_lifts_a_tasks_limit(r):
    with override_settings(JOBS_RATE_LIMITS={"tests.tasks.rated": None}):
        for i in range(3):
            await tasks.rated.aenqueue(f"r{i}")
        await adrain(concurrency=3)
    assert r.exists("jobs:rate:tests.tasks.rated") == 0  # never asked
    with override_settings(JOBS_RATE_LIMITS={"tests.tasks.in_order": "10/s"}):
        for i in range(2):
            await tasks.in_order.aenqueue(f"o{i}")
        await adrain(concurrency=2)
    assert r.exists("jobs:rate:tests.tasks.in_order") == 1  # limited: asked
    with override_settings(JOBS_RATE_LIMITS={"tests.tasks.in_order": "nope"}):
        with pytest.raises(WorkerError, match="is not a rate"):
            await adrain()
