"""Helpers for users' tests: run the queued jobs now, in this process.

from jobs.testing import drain, adrain

result = add.enqueue(2, 3)
drain()                      # a burst worker runs everything due
result.refresh()
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.tasks import task_backends

from jobs.backend import JobsBackend
from jobs.worker import JobsWorker


async def adrain(
    backend: str = "default", queues: list[str] | None = None, **options: Any
) -> dict[str, int]:
    """Run every due job of `backend`'s queues in a burst worker; return its counts."""

    jobs_backend = task_backends[backend]
    assert isinstance(jobs_backend, JobsBackend), f"{backend!r} is not a JobsBackend"
    options.setdefault("concurrency", 10)
    worker = JobsWorker(
        jobs_backend, queues=queues, burst=True, handle_signals=False, **options
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return {
        "complete": worker.jobs_complete,
        "failed": worker.jobs_failed,
        "retried": worker.jobs_retried,
    }


def drain(
    backend: str = "default", queues: list[str] | None = None, **options: Any
) -> dict[str, int]:
    """See adrain()."""
    return async_to_sync(adrain)(backend, queues, **options)
