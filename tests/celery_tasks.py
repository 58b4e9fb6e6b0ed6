"""Celery-style tasks used by the tests (jobs.celery; in the test backend's IMPORTS)."""

from __future__ import annotations

import asyncio
from typing import Any

from jobs.celery import shared_task
from tests.tasks import _test_redis


@shared_task(bind=True)
def who_am_i(self: Any) -> dict[str, Any]:
    return {"id": self.request.id, "retries": self.request.retries, "name": self.name}


@shared_task(bind=True, max_retries=2, default_retry_delay=0)
def retries_then_gives_up(self: Any, key: str) -> None:
    _test_redis().rpush(key, self.request.retries)
    raise self.retry(exc=KeyError(key))


@shared_task(bind=True, default_retry_delay=0)
def succeeds_on_third(self: Any, key: str, countdown: float = 0) -> int:
    runs = _test_redis().incr(key)
    if runs < 3:
        raise self.retry(countdown=countdown)
    return self.request.retries


@shared_task(autoretry_for=(ConnectionError,), max_retries=3, retry_backoff=0.01)
async def flaky_connection(key: str) -> int:
    await asyncio.sleep(0)
    runs = _test_redis().incr(key)
    if runs < 3:
        raise ConnectionError(f"run {runs}")
    return runs


@shared_task(autoretry_for=(ValueError,), max_retries=1, default_retry_delay=0)
def always_bad(key: str) -> None:
    _test_redis().incr(key)
    raise ValueError("still bad")


@shared_task(queue="reports", time_limit=30, priority=9)
def on_reports(x: int) -> int:
    return x


@shared_task
def add(x: int, y: int) -> int:
    return x + y
