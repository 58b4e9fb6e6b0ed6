"""Enqueue when the surrounding database transaction commits.

    with transaction.atomic():
        order = Order.objects.create(...)
        enqueue_on_commit(send_receipt, order.pk)   # nothing queued on rollback

The job is validated (JSON, size) at once, so a bad argument fails inside the
transaction; it is written to Redis only after the commit. Django has no async
transactions: async code that runs its transaction in a sync function (through
`sync_to_async`) calls `enqueue_on_commit` there; `aenqueue_on_commit` registers
on the connection async ORM calls use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import transaction

from jobs.backend import JobsBackend

if TYPE_CHECKING:
    from django.tasks.base import Task

    from jobs.task import JobResult


def enqueue_on_commit(task: Task[Any, Any], *args: Any, **kwargs: Any) -> JobResult:
    """Queue `task` when the current transaction commits; return its (READY) result.

    If the transaction rolls back, nothing is queued and the id never exists. If
    Redis refuses the job at commit time, the error propagates from the commit.
    """

    backend = task.get_backend()
    assert isinstance(backend, JobsBackend), "enqueue_on_commit needs a JobsBackend"
    job = backend.prepare(task, args, kwargs)
    transaction.on_commit(lambda: backend.submit(job))
    return job.result


async def aenqueue_on_commit(
    task: Task[Any, Any], *args: Any, **kwargs: Any
) -> JobResult:
    """See enqueue_on_commit()."""
    return await sync_to_async(enqueue_on_commit)(task, *args, **kwargs)
