"""Signals beyond Django's three (`task_enqueued`, `task_started`,
`task_finished` in django.tasks.signals), for error reporting and metrics.

    from jobs.signals import task_failed

    @receiver(task_failed)
    def report(sender, task_result, exception, **kwargs):
        ...

They are sent with `send_robust()`: a receiver that raises is logged and
changes nothing about the job or the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("jobs.signals")

# sender: the backend's class; task_result, exception, delay (seconds before
# the next attempt). An attempt failed and the job will run again.
task_retried = Signal()
# sender: the backend's class; task_result, exception. Sent once a worker
# has recorded the job FAILED, just before task_finished: whether it ran
# (raised, timed out, cancelled, result too large) or not (expired, another
# backend's, runs lost); not for a job no TaskResult can name (an unknown
# task, an unreadable payload: logged), nor a cancel() of a queued job.
task_failed = Signal()
# sender: the worker's class; worker. Connected to Redis, taking jobs.
worker_ready = Signal()
# sender: the worker's class; worker. Taking no more jobs; running ones drain.
worker_stopping = Signal()


def send(signal: Signal, sender: Any, **named: Any) -> None:
    """Send `signal` to its receivers; log the ones that raise."""
    if not signal.receivers:
        return
    for receiver, outcome in signal.send_robust(sender, **named):
        if isinstance(outcome, Exception):
            logger.error("signal receiver %r raised", receiver, exc_info=outcome)
