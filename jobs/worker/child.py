"""What runs in a `--pool processes` child (see jobs.worker.processes).

The fork server imports this module before forking children, so Django is set
up and the tasks are imported once, not in every child.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

import django
from django.apps import apps

from jobs import registry
from jobs.exceptions import TaskFailed
from jobs.worker.execution import run_sync


def ready() -> None:
    """Set Django up unless it is (in the worker it is; logging stays as set)."""
    if not apps.ready:
        django.setup()


ready()

WORKER_POLL = 1.0  # seconds between a child's checks that its worker lives
STARTED = "started"  # what a child says when it takes a job


def serve(conn: Connection, worker: int) -> None:
    """Run the jobs sent on `conn` one at a time until the worker hangs up."""
    ready()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a stop means stop, mid-job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle
    # A job hung here must not outlive a worker that was SIGKILLed. Our parent
    # is the fork server, which lives as long as any of its children does.
    watch = threading.Thread(target=follow, args=(worker,), daemon=True)
    watch.start()
    while True:
        try:
            path, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(STARTED)  # the job's timeout counts from here, not from the send
        reply = run(path, args, kwargs)
        try:
            conn.send(reply)
        except (TypeError, AttributeError, pickle.PicklingError) as e:
            conn.send(failure(TypeError(f"The return value cannot be sent back: {e}")))


def follow(worker: int) -> None:
    """Exit once the worker process `worker` is gone."""
    while True:
        time.sleep(WORKER_POLL)
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            os._exit(1)


def run(path: str, args: list[Any], kwargs: dict[str, Any]) -> tuple[bool, Any, str]:
    """(True, value, "") or failure()."""
    try:
        task = registry.get(path)
        return True, run_sync(task.func, args, kwargs), ""
    except BaseException as exc:  # whatever the task raises is its failure
        return failure(exc)


def failure(exc: BaseException) -> tuple[bool, Any, str]:
    """(False, the exception or a TaskFailed standing for it, its traceback)."""
    tb = "".join(traceback.format_exception(exc))
    exc.__traceback__ = None
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        cls = type(exc)
        exc = TaskFailed(
            f"{cls.__qualname__}: {exc}",
            exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
        )
    return False, exc, tb
