"""What runs in the worker for a jobs.celery task: `self.request`,
`self.retry()`, autoretry_for, and Celery's task options as JobsTask's.

A CeleryTask's function is wrapped (wrap()) into one that takes Django's
context, builds the `self` a `bind=True` function expects, and turns
autoretry_for's exceptions into arq's `Retry`, which our worker schedules.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, NoReturn

from arq.worker import Retry
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from jobs.exceptions import JobsError
from jobs.task import JobsTaskContext

MAX_RETRIES = 3
DEFAULT_RETRY_DELAY = 180.0
RETRY_BACKOFF_MAX = 600.0
FOREVER = 10**9  # attempts of max_retries=None
# Options that change nothing here: JSON is the only serializer, results are
# always kept, a job is acknowledged when it ends (leases), started is recorded.
HARMLESS = frozenset(
    {"serializer", "ignore_result", "acks_late", "track_started", "typing"}
    | {"reject_on_worker_lost", "store_errors_even_if_ignored", "trail"}
)
RETRY_OPTIONS = frozenset(
    {"autoretry_for", "max_retries", "default_retry_delay", "retry_backoff"}
    | {"retry_backoff_max", "retry_jitter", "retry_kwargs"}
)
MAPPED = frozenset({"queue", "time_limit", "priority", "rate_limit", "expires"})


class MaxRetriesExceededError(JobsError):
    """self.retry() was called with no retries left and no exception to raise."""


platforms = SimpleNamespace(
    C_FORCE_ROOT=False
)  # `platforms.C_FORCE_ROOT = True` is moot


@dataclass(frozen=True, slots=True)
class Request:
    """`self.request` in a `bind=True` task: the job being run."""

    id: str
    retries: int  # attempts before this one
    args: list[Any]
    kwargs: dict[str, Any]
    task: str  # the task's dotted path, as Celery's request.task
    called_directly: bool = False
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What Celery's retry options said, resolved."""

    autoretry_for: tuple[type[BaseException], ...] = ()
    max_retries: int | None = MAX_RETRIES
    default_retry_delay: float = DEFAULT_RETRY_DELAY
    retry_backoff: float = 0.0  # 0: a fixed default_retry_delay
    retry_backoff_max: float = RETRY_BACKOFF_MAX
    retry_jitter: bool = True
    retry_kwargs: dict[str, Any] = field(default_factory=dict)

    def countdown(self, retries: int) -> float:
        """Seconds before the next run after `retries` retries, as Celery's."""
        if not self.retry_backoff:
            return self.default_retry_delay
        delay = min(self.retry_backoff * 2.0**retries, self.retry_backoff_max)
        return random.uniform(0, delay) if self.retry_jitter else delay


def retry_policy(options: dict[str, Any]) -> RetryPolicy:
    backoff = options.pop("retry_backoff", False)
    if backoff is True:
        backoff = 1
    return RetryPolicy(
        autoretry_for=tuple(options.pop("autoretry_for", ())),
        max_retries=options.pop("max_retries", MAX_RETRIES),
        default_retry_delay=float(
            options.pop("default_retry_delay", DEFAULT_RETRY_DELAY)
        ),
        retry_backoff=float(backoff or 0),
        retry_backoff_max=float(options.pop("retry_backoff_max", RETRY_BACKOFF_MAX)),
        retry_jitter=bool(options.pop("retry_jitter", True)),
        retry_kwargs=dict(options.pop("retry_kwargs", {})),
    )


class Bound:
    """`self` of a `bind=True` task during one run: its request, retry(), and
    the task's own attributes (`self.name`, `self.delay`...)."""

    def __init__(self, celery_task: Any, request: Request) -> None:
        self.celery_task = celery_task
        self.request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self.celery_task, name)

    def retry(
        self,
        exc: BaseException | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        max_retries: int | None = None,
        **unsupported: Any,
    ) -> NoReturn:
        """Run this job again later (raises: call it as `raise self.retry(...)`).

        With no retries left, raise `exc` (or MaxRetriesExceededError), as
        Celery does. The arguments stay the job's: `args=`/`kwargs=` raise.
        """
        if unsupported:
            raise TypeError(
                f"retry() does not take {sorted(unsupported)} here: a retry runs "
                "the same job again, with its own arguments (docs/celery.md)."
            )
        policy = self.celery_task.policy
        limit = policy.max_retries if max_retries is None else max_retries
        if limit is not None and self.request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"{self.request.task} {self.request.id}: {limit} retries used."
            )
        if eta is not None:
            countdown = (as_utc(eta) - timezone.now()).total_seconds()
        elif countdown is None:
            countdown = policy.countdown(self.request.retries)
        raise Retry(defer=max(countdown, 0.0)) from exc


def as_utc(moment: datetime) -> datetime:
    """Celery reads a naive eta as UTC (enable_utc)."""
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def request_of(context: JobsTaskContext, args: Any, kwargs: Any) -> Request:
    result = context.task_result
    return Request(
        id=result.id,
        retries=max(context.attempt - 1, 0),
        args=list(args),
        kwargs=dict(kwargs),
        task=result.task.module_path,
        hostname=result.worker_ids[-1] if result.worker_ids else None,
    )


def wrap(func: Callable[..., Any], bind: bool, holder: list[Any]) -> Any:
    """The function the JobsTask runs: takes Django's context, gives the
    user's function its `self` (bind=True), and turns autoretry_for's
    exceptions into retries."""

    def call(context: JobsTaskContext, args: Any, kwargs: Any) -> Any:
        bound = Bound(holder[0], request_of(context, args, kwargs))
        return bound, ((bound, *args) if bind else args)

    if inspect.iscoroutinefunction(func):

        async def run_async(context: JobsTaskContext, *args: Any, **kwargs: Any) -> Any:
            bound, call_args = call(context, args, kwargs)
            try:
                return await func(*call_args, **kwargs)
            except holder[0].policy.autoretry_for as exc:
                autoretry(bound, exc)

        runner: Any = run_async
    else:

        def run_sync(context: JobsTaskContext, *args: Any, **kwargs: Any) -> Any:
            bound, call_args = call(context, args, kwargs)
            try:
                return func(*call_args, **kwargs)
            except holder[0].policy.autoretry_for as exc:
                autoretry(bound, exc)

        runner = run_sync
    functools.update_wrapper(runner, func)
    del runner.__wrapped__  # Django reads the signature below, with `context`
    runner.__signature__ = context_signature(func, bind)
    return runner


def autoretry(bound: Bound, exc: BaseException) -> NoReturn:
    if isinstance(exc, Retry):
        raise exc
    bound.retry(exc=exc, **bound.celery_task.policy.retry_kwargs)


def context_signature(func: Callable[..., Any], bind: bool) -> inspect.Signature:
    signature = inspect.signature(func)
    params = list(signature.parameters.values())[1 if bind else 0 :]
    context = inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return signature.replace(parameters=[context, *params])


def task_options(options: dict[str, Any]) -> dict[str, Any]:
    """JobsTask's arguments for Celery's task options (left in `options`:
    the retry ones); InvalidTask for one this runner cannot honour."""
    for name in HARMLESS & options.keys():
        del options[name]
    unknown = sorted(set(options) - MAPPED - RETRY_OPTIONS - {"name", "backend"})
    if unknown:
        raise InvalidTask(
            f"Celery options {unknown} are not supported; docs/celery.md says "
            "what each becomes or why it has no equivalent."
        )
    mapped: dict[str, Any] = {"takes_context": True}
    if "queue" in options:
        mapped["queue_name"] = options.pop("queue")
    if "time_limit" in options:
        mapped["timeout"] = options.pop("time_limit")
    if "priority" in options:
        mapped["priority"] = priority(options.pop("priority"))
    if "rate_limit" in options:
        rate = options.pop("rate_limit")
        mapped["rate_limit"] = f"{rate}/s" if isinstance(rate, (int, float)) else rate
    if "expires" in options:
        mapped["expires"] = seconds(options.pop("expires"))
    if "backend" in options:
        mapped["backend"] = options.pop("backend")
    return mapped


def priority(value: int) -> int:
    """Celery's 0..9 (higher first, as on RabbitMQ) as Django's -100..100."""
    if not isinstance(value, int) or not 0 <= value <= 10:
        raise ValueError(f"priority {value!r}: give Celery's 0 to 9 (higher first).")
    return value * 10


def seconds(value: float | timedelta | datetime) -> float | datetime:
    return value.total_seconds() if isinstance(value, timedelta) else value
