"""Unique jobs: while a job holding a task's unique key is queued or running,
enqueueing again returns that job's result and queues nothing."""

from __future__ import annotations

import asyncio

import pytest
from django.db import transaction
from django.tasks import default_task_backend
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import InvalidTask

from jobs import WorkflowError, chain, enqueue_on_commit
from jobs.testing import adrain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def ran(r) -> list[str]:
    return [label.decode() for label in r.lrange("test:order", 0, -1)]


async def test_a_queued_unique_job_is_returned_instead_of_a_second_one(r):
    unique = tasks.in_order.using(unique=True)
    first = await unique.aenqueue("a")
    again = await unique.aenqueue("a")
    other = await unique.aenqueue("b")  # other arguments: another key
    assert again.id == first.id
    assert again.status == TaskResultStatus.READY
    assert other.id != first.id
    await adrain()
    assert sorted(ran(r)) == ["a", "b"]
    # Released when the job ended: the next one queues.
    after = await unique.aenqueue("a")
    assert after.id != first.id


def test_an_explicit_key_spans_arguments_and_keyword_order(r):
    by_key = tasks.add.using(unique="nightly-report")
    first = by_key.enqueue(1, 2)
    assert by_key.enqueue(5, 6).id == first.id
    derived = tasks.add.using(unique=True)
    one = derived.enqueue(x=1, y=2)
    assert derived.enqueue(y=2, x=1).id == one.id
    assert derived.enqueue(x=2, y=1).id != one.id


async def test_a_running_unique_job_holds_its_key(r):
    unique = tasks.counted.using(unique="slow")
    first = await unique.aenqueue("slow", 0.5)
    # Claim it and let it run: a second enqueue meanwhile returns it.
    drain = asyncio.create_task(adrain())
    while not r.exists(f"arq:in-progress:{first.id}"):
        await asyncio.sleep(0.01)
    assert (await unique.aenqueue("slow", 0.5)).id == first.id
    await drain
    assert int(r.get("test:runs:slow")) == 1


async def test_a_cancelled_or_expired_job_releases_its_key(r):
    unique = tasks.in_order.using(unique="k")
    first = await unique.aenqueue("first")
    assert await default_task_backend.acancel(first.id)
    second = await unique.aenqueue("second")
    assert second.id != first.id
    r.delete(f"arq:job:{second.id}")  # what its expiry does
    third = await unique.aenqueue("third")
    assert third.id not in (first.id, second.id)


def test_enqueue_on_commit_is_deduplicated_too(r):
    unique = tasks.in_order.using(unique="on-commit")
    with transaction.atomic():
        enqueue_on_commit(unique, "x")
        enqueue_on_commit(unique, "x")
    assert r.zcard("arq:queue") == 1


def test_bad_unique_values_and_unique_workflow_steps_are_refused():
    for bad in ("", 3, b"key"):
        with pytest.raises(InvalidTask, match="unique must be"):
            tasks.add.using(unique=bad)
    with pytest.raises(WorkflowError, match="is unique"):
        chain(tasks.add.using(unique=True).bind(1, 2)).enqueue()
