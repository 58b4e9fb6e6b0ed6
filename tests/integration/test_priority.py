"""Per-job priority: within one queue higher runs first, FIFO among equals.

Jobs are queued while no worker runs (a paused worker), then one burst worker
with one slot runs them all: the order it ran them in is the claim order.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.tasks import default_task_backend
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from jobs.testing import adrain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def ran(r) -> list[str]:
    return [label.decode() for label in r.lrange("test:order", 0, -1)]


async def test_higher_priority_first_and_fifo_among_equals(r):
    plan = [0, 5, -3, 5, 100, 0, -100, -3, 1, 0, 100]
    for i, priority in enumerate(plan):
        await tasks.in_order.using(priority=priority).aenqueue(f"{priority}/{i}")
    await adrain(concurrency=1)
    expected = sorted(range(len(plan)), key=lambda i: (-plan[i], i))
    assert ran(r) == [f"{plan[i]}/{i}" for i in expected]
    # The priority queues and their index are gone with their last job.
    assert r.keys("jobs:queue:*") == []
    assert r.keys("jobs:priorities:*") == []


async def test_a_deferred_job_takes_its_priority_when_due(r):
    soon = timezone.now() + timedelta(milliseconds=300)
    await tasks.in_order.using(priority=10, run_after=soon).aenqueue("urgent")
    for i in range(3):
        await tasks.in_order.aenqueue(f"plain{i}")
    while timezone.now() < soon:  # the worker is paused until `urgent` is due
        time.sleep(0.05)
    await adrain(concurrency=1)
    # Due last, taken first.
    assert ran(r) == ["urgent", "plain0", "plain1", "plain2"]


async def test_queue_order_comes_before_priority(r):
    await tasks.in_order.using(queue_name="low", priority=100).aenqueue("low, 100")
    await tasks.in_order.using(queue_name="high", priority=-100).aenqueue("high, -100")
    await tasks.in_order.using(queue_name="high", priority=0).aenqueue("high, 0")
    await adrain(queues=["high", "low"], concurrency=1)
    assert ran(r) == ["high, 0", "high, -100", "low, 100"]


async def test_the_result_keeps_its_priority():
    result = await tasks.add.using(priority=-7).aenqueue(1, 2)
    assert (await tasks.add.aget_result(result.id)).task.priority == -7
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.task.priority == -7


async def test_a_queued_job_of_any_priority_can_be_cancelled(r):
    result = await tasks.in_order.using(priority=42).aenqueue("cancelled")
    assert await default_task_backend.acancel(result.id)
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert ran(r) == []


async def test_priorities_are_whole_numbers_within_djangos_range():
    for bad in (101, -101, 2.5):
        with pytest.raises(InvalidTask, match="priority must be a whole number"):
            await tasks.add.using(priority=bad).aenqueue(1, 1)
    # 3.0 is a whole number to Django: queued as priority 3.
    result = await tasks.add.using(priority=3.0).aenqueue(1, 1)
    await adrain()
    await result.arefresh()
    assert result.return_value == 2
