"""Example tasks, found by the worker's autodiscovery (this is an app's tasks.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast

from django.tasks import TaskContext, task

from jobs import JobsTaskContext


@task
def add(x: int, y: int) -> int:
    """The seed's first task: a plain function, run in the worker's thread pool."""
    return x + y


@task(queue_name="reports", takes_context=True)
async def report(
    context: TaskContext[Any, Any],
    steps: int = 10,
    delay: float = 0.5,
    fail_at: int | None = None,
) -> dict[str, object]:
    """A long job on the loop: `steps` steps of `delay` seconds each, reporting
    its progress after each; it raises at step `fail_at`, if given."""
    progress = cast(JobsTaskContext, context)  # what this backend passes
    total = 0
    await progress.aset_progress(0, steps, "starting")
    for step in range(1, steps + 1):
        await asyncio.sleep(delay)
        if step == fail_at:
            raise RuntimeError(f"the report broke at step {step} of {steps}")
        total += random.randint(1, 100)
        await progress.aset_progress(step, steps, f"step {step} of {steps}")
    return {"steps": steps, "total": total, "attempt": context.attempt}


@task
def fail(message: str = "this job fails on purpose") -> None:
    """A job that raises, to show errors and their traceback."""
    raise ValueError(message)


@task
def total(values: list[int]) -> int:
    """Sum a list: a chord's callback (docs/workflows.md)."""
    return sum(values)
