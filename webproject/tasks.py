"""Example tasks, found by the worker's autodiscovery (this is an app's tasks.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from django.tasks import TaskContext, task


@task
def add(x: int, y: int) -> int:
    """The seed's first task: a plain function, run in the worker's thread pool."""
    return x + y


@task(queue_name="reports", takes_context=True)
async def report(
    context: TaskContext[Any, Any], steps: int = 10, delay: float = 0.5
) -> dict[str, object]:
    """A long job on the loop: `steps` steps of `delay` seconds each."""
    total = 0
    for _ in range(steps):
        await asyncio.sleep(delay)
        total += random.randint(1, 100)
    return {"steps": steps, "total": total, "attempt": context.attempt}


@task
def fail(message: str = "this job fails on purpose") -> None:
    """A job that raises, to show errors and their traceback."""
    raise ValueError(message)
