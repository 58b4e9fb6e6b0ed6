"""Task failures reported to Sentry, when sentry-sdk is installed (the `sentry`
extra) and `sentry_sdk.init()` ran in the worker's process (settings, say).

Each job recorded FAILED is one event: the task's exception with its
traceback, tagged `task` (dotted path), `job_id`, `attempt` and `queue`.
Attempts that will be retried are not reported, as Celery's integration
does not. `jobs.apps` connects `report_failure` to `jobs.signals.task_failed`; it does
nothing unless sentry_sdk was imported and initialized.
"""

from __future__ import annotations

import sys
from typing import Any

from jobs.task import JobResult


def report_failure(
    sender: Any, task_result: JobResult, exception: BaseException, **named: Any
) -> None:
    # Imported by whoever called sentry_sdk.init(); this module never imports
    # it, so a project without Sentry loads none of it.
    sentry_sdk: Any = sys.modules.get("sentry_sdk")
    if sentry_sdk is None or not sentry_sdk.get_client().is_active():
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("task", task_result.task.module_path)
        scope.set_tag("job_id", task_result.id)
        scope.set_tag("attempt", task_result.attempts)
        scope.set_tag("queue", task_result.task.queue_name)
        scope.set_context(
            "job",
            {"args": task_result.args, "kwargs": task_result.kwargs},
        )
        sentry_sdk.capture_exception(exception)
