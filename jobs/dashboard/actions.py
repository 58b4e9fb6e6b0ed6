"""What the dashboard's buttons do: cancel, retry, run a schedule now.

Each returns an `ActionResult` (a message for the admin's message list) instead of
raising, so a stale page (a job that finished meanwhile, a schedule deleted)
gets an explanation rather than an error page.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.tasks.exceptions import InvalidTask

from jobs import registry
from jobs.backend import RESULT_ID
from jobs.cancelled import Cancel
from jobs.dashboard import schedules as dashboard_schedules
from jobs.exceptions import JobsError

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.records import Record


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    message: str
    job_id: str | None = None  # the job the action made, if any


def is_coroutine_task(path: str) -> bool:
    """Whether the task at `path` is a coroutine (only those stop mid-run)."""
    try:
        return inspect.iscoroutinefunction(registry.get(path).func)
    except JobsError:
        return False


def record_of(backend: JobsBackend, job_id: str) -> Record | None:
    if not RESULT_ID.match(job_id):
        return None
    record = backend.results.get(job_id)
    if record is None or record.get("backend", backend.alias) != backend.alias:
        return None
    return record


def cancel(backend: JobsBackend, job_id: str) -> ActionResult:
    """Cancel a queued or running job (see JobsBackend.cancel())."""
    record = record_of(backend, job_id)
    if record is None:
        return ActionResult(False, f"Job {job_id} does not exist (or has expired).")
    if record["status"] in ("SUCCESSFUL", "FAILED"):
        return ActionResult(
            False, f"Job {job_id} had already finished ({record['status']})."
        )
    # The script's answer, not the record: a running coroutine may be cancelled
    # and recorded FAILED before we could read it back.
    outcome = backend.cancel_outcome(job_id)
    if outcome is Cancel.NOTHING:
        return ActionResult(False, f"Job {job_id} was neither queued nor running.")
    if outcome is Cancel.DEQUEUED:
        return ActionResult(True, f"Cancelled job {job_id} before it ran.", job_id)
    if is_coroutine_task(record["task"]):
        return ActionResult(
            True, f"Asked the worker to cancel running job {job_id}.", job_id
        )
    return ActionResult(
        False,
        f"Job {job_id} runs a plain function, which cannot be interrupted: "
        "it will run to its end.",
    )


def retry(backend: JobsBackend, job_id: str) -> ActionResult:
    """Enqueue a failed job's task again, with its arguments, as a new job."""
    record = record_of(backend, job_id)
    if record is None:
        return ActionResult(False, f"Job {job_id} does not exist (or has expired).")
    if record["status"] != "FAILED":
        return ActionResult(False, f"Only failed jobs can be retried; {job_id} is not.")
    try:
        task = registry.get(record["task"])
        queue = record.get("queue")
        if queue and queue != task.queue_name and backend.accepts_queue(queue):
            task = task.using(queue_name=queue)
        meta: dict[str, Any] = {**(record.get("meta") or {}), "retry_of": job_id}
        # A workflow counts only the jobs it made: the new one runs on its own.
        step = meta.pop("workflow", None)
        result = backend.enqueue(task, record["args"], record["kwargs"], meta=meta)
    except (JobsError, InvalidTask) as e:
        return ActionResult(False, f"Could not retry job {job_id}: {e}")
    alone = " It runs alone: its workflow does not resume." if step else ""
    return ActionResult(
        True, f"Queued job {result.id} to retry job {job_id}.{alone}", result.id
    )


def run_schedule(key: str) -> ActionResult:
    """Run the schedule `key` ("db:<pk>" or "settings:<name>") now."""

    try:
        name, job_id = dashboard_schedules.run_now(key)
    except LookupError:
        return ActionResult(False, f"No schedule {key!r}.")
    except (JobsError, InvalidTask) as e:
        return ActionResult(False, f"Could not run schedule {key!r}: {e}")
    return ActionResult(True, f"Queued job {job_id} for schedule {name!r}.", job_id)
