"""`python manage.py jobs_worker`: run workers (and the schedules) on uvloop."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from argparse import ArgumentParser, ArgumentTypeError, BooleanOptionalAction
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.tasks import task_backends

from jobs.backend import JobsBackend
from jobs.exceptions import WorkerError
from jobs.logs import JsonFormatter
from jobs.schedules.scheduler import Scheduler
from jobs.worker import JobsWorker
from jobs.worker.startup import checked_queues
from jobs.worker.supervisor import Supervisor

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s %(message)s"
# Seconds idle pool threads get to end at exit (they wake on the pool's shutdown
# at once); a thread still alive after it runs a job that cannot be stopped.
IDLE_THREADS_EXIT = 0.5


class NotFrom(logging.Filter):
    """Drop the records of one logger and its children."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.prefix = name

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return not (name == self.prefix or name.startswith(self.prefix + "."))


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ArgumentTypeError(f"{value} is not a positive integer")
    return number


def non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ArgumentTypeError(f"{value} is negative")
    return number


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class Command(BaseCommand):
    # The worker checks its own backend (a bad REDIS_URL stops it with a clear
    # error); all of `manage.py check` would add ~0.3 s to every start.
    requires_system_checks: list[str] = []
    help = (
        "Run jobs from the queues of a django.tasks backend (arq over Redis). "
        "Coroutine tasks run on the event loop (uvloop), plain functions in a "
        "thread pool. SIGTERM or Ctrl-C stops taking jobs and lets running ones "
        "finish within --grace seconds; a second one stops at once."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        self.add_consuming_arguments(parser)
        self.add_process_arguments(parser)
        self.add_logging_arguments(parser)

    def add_consuming_arguments(self, parser: ArgumentParser) -> None:
        """What to run: backend, queues, concurrency, burst, schedules."""
        parser.add_argument(
            "--backend",
            default="default",
            help="The TASKS alias whose jobs to run (default: %(default)s).",
        )
        parser.add_argument(
            "-Q",
            "--queues",
            help="Comma-separated queue names, highest priority first "
            "(default: all of the backend's QUEUES, in their order; `default` "
            "when QUEUES is [], which accepts any name here).",
        )
        parser.add_argument(
            "-c",
            "--concurrency",
            type=positive_int,
            default=10,
            help="Jobs run at once per process (default: %(default)s).",
        )
        parser.add_argument(
            "--pool",
            choices=["threads", "processes"],
            default="threads",
            help="Where plain functions run: threads (a timeout stops waiting, "
            "the thread runs on) or child processes (killed past their timeout; "
            "costs a round trip to the child per job). Default: %(default)s.",
        )
        parser.add_argument(
            "--burst",
            action="store_true",
            help="Stop once the queues are empty.",
        )
        parser.add_argument(
            "--schedules",
            action=BooleanOptionalAction,
            default=None,
            help="Also enqueue the periodic schedules (Schedule rows and "
            "JOBS_SCHEDULES), like Celery's `worker -B`. On by default except with "
            "--burst; safe on any number of workers: each run is enqueued once.",
        )

    def add_process_arguments(self, parser: ArgumentParser) -> None:
        """How processes are kept: their number, recycling, the grace period."""
        parser.add_argument(
            "-p",
            "--processes",
            type=positive_int,
            default=1,
            help="Worker processes, kept up by a supervisor (default: %(default)s).",
        )
        parser.add_argument(
            "--max-jobs",
            type=positive_int,
            default=None,
            help="Replace a worker process after it has started this many jobs "
            "(Celery's max-tasks-per-child). It drains first: nothing is lost. "
            "With --pool processes: each pool child, after this many jobs.",
        )
        parser.add_argument(
            "--max-memory",
            type=positive_int,
            default=None,
            help="Replace a worker process whose memory (RSS) exceeds this many MB.",
        )
        parser.add_argument(
            "--grace",
            type=non_negative_float,
            default=30.0,
            help="Seconds running jobs get on SIGTERM (default: %(default)s).",
        )
        parser.add_argument(
            "--redis-wait",
            type=non_negative_float,
            default=None,
            help="Seconds to wait for Redis at start-up before exiting with an "
            "error (default: wait for ever, retrying with back-off, as under "
            "systemd or Kubernetes; a signal stops the wait at once).",
        )

    def add_logging_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-l",
            "--loglevel",
            default="info",
            choices=["debug", "info", "warning", "error", "critical"],
            help="Log level of the worker's own logs (default: %(default)s).",
        )
        parser.add_argument(
            "--log-format",
            default="text",
            choices=["text", "json"],
            help="json: one JSON object a line with job_id and task, through "
            "every handler of this process (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.setup_logging(options["loglevel"], options["log_format"])
        backend = task_backends[options["backend"]]
        if not isinstance(backend, JobsBackend):
            raise CommandError(
                f"TASKS[{options['backend']!r}] is {type(backend).__name__}, "
                "not jobs.backend.JobsBackend."
            )
        queues = options["queues"].split(",") if options["queues"] else None
        try:
            checked_queues(backend, queues)
        except WorkerError as e:
            raise CommandError(str(e)) from e
        # With --pool processes the limits recycle the pool's children instead.
        recycled = options["pool"] == "threads" and (
            options["max_jobs"] or options["max_memory"]
        )
        supervised = options["processes"] > 1 or recycled
        if not supervised:
            self.run_worker(backend, queues, options)
            return

        Supervisor(
            backend,
            queues or backend.queue_order,
            options["processes"],
            run_child=lambda: self.run_worker(
                backend, queues, options, supervised=True
            ),
            grace=options["grace"],
            burst=options["burst"],
        ).run()

    def run_worker(
        self,
        backend: JobsBackend,
        queues: list[str] | None,
        options: dict[str, Any],
        supervised: bool = False,
    ) -> int:
        """Run one worker in this process until it stops; return its exit code."""

        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        max_memory = options["max_memory"]
        schedules = options["schedules"]
        if schedules is None:
            schedules = not options["burst"]
        try:
            worker = JobsWorker(
                backend,
                queues=queues,
                concurrency=options["concurrency"],
                pool=options["pool"],
                burst=options["burst"],
                grace=options["grace"],
                redis_wait=options["redis_wait"],
                max_jobs_run=options["max_jobs"],
                max_memory=max_memory * 1024 * 1024 if max_memory else None,
                scheduler=self.scheduler() if schedules else None,
                supervised=supervised,
            )
            worker.run()
        except WorkerError as e:
            raise CommandError(str(e)) from e
        finally:
            loop.close()
            asyncio.set_event_loop(None)
        self.exit_despite_stuck_threads()
        return 0

    def scheduler(self) -> Any:
        return Scheduler()

    def exit_despite_stuck_threads(self) -> None:
        # A plain-function job still running after the grace period was handed
        # back to the queue; its thread cannot be stopped, and Python would wait
        # for it at exit. Leave now, as the grace period promised. Idle pool
        # threads are ending on their own (the pool was shut down): not counted.
        threads = [t for t in threading.enumerate() if t.name.startswith("jobs-sync")]
        deadline = time.monotonic() + IDLE_THREADS_EXIT
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        stuck = sum(thread.is_alive() for thread in threads)
        if stuck:
            logging.getLogger("jobs.worker").warning(
                "exiting with %d plain-function job(s) still running (handed back)",
                stuck,
            )
            logging.shutdown()
            os._exit(0)

    def setup_logging(self, level: str, log_format: str = "text") -> None:
        root = logging.getLogger()
        if not root.handlers:
            logging.basicConfig(format=LOG_FORMAT)
            # Django's default LOGGING prints django.* records bare on its own
            # console handler (DEBUG=True); ours prints them formatted.
            for handler in logging.getLogger("django").handlers:
                handler.addFilter(NotFrom("django.tasks"))
        for name in ("jobs", "arq", "django.tasks"):
            logging.getLogger(name).setLevel(level.upper())
        if log_format == "json":
            self.use_json_logs()

    def use_json_logs(self) -> None:
        """Give every configured handler the JSON formatter (job id and task
        included), wherever LOGGING sends it."""

        formatter = JsonFormatter()
        loggers = [
            logging.getLogger(),
            *map(logging.getLogger, logging.root.manager.loggerDict),
        ]
        for logger in loggers:
            for handler in logger.handlers:
                handler.setFormatter(formatter)
