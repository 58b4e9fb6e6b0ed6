"""arq's per-job hooks in `jobs_worker`: `on_job_start` / `on_job_end` of
JOBS_WORKER_HOOKS, called with a ctx shaped as arq's Worker makes it
(`job_id`, `job_try`, `enqueue_time`, `score`, plus the worker's `redis`), so
one hook serves both `jobs_worker` and `arq jobs.arq.WorkerSettings`.

Only jobs of a worker that has such a hook pay for it. A hook that raises is
logged; the job still runs and is recorded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.worker.execution import Claimed
    from jobs.worker.loop import JobsWorker

logger = logging.getLogger("jobs.worker")


def job_ctx(worker: JobsWorker, claimed: Claimed) -> dict[str, Any]:
    enqueued = claimed.job.enqueued_ms if claimed.job is not None else 0
    return {
        **worker.ctx,
        "job_id": claimed.id,
        "job_try": claimed.attempt,
        "enqueue_time": datetime.fromtimestamp(enqueued / 1000, UTC),
        "score": None,
    }


async def call(hook: Any, ctx: dict[str, Any], name: str) -> None:
    if hook is None:
        return
    try:
        await hook(ctx)
    except Exception:
        logger.exception("%s hook failed for job %s", name, ctx["job_id"])


async def run_hooked(worker: JobsWorker, claimed: Claimed) -> None:
    """Run a claimed job between the worker's on_job_start and on_job_end."""
    ctx = job_ctx(worker, claimed)
    await call(worker.on_job_start, ctx, "on_job_start")
    try:
        await worker.run_claimed(claimed)
    finally:
        await call(worker.on_job_end, ctx, "on_job_end")
