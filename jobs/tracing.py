"""OpenTelemetry spans, when opentelemetry-api is installed (the `otel` extra)
and the process set a TracerProvider: one span per enqueue (PRODUCER) and one
per run (CONSUMER). The enqueuing span's context travels in the job (its
meta, under "trace", W3C traceparent), so a run is a child of the request
that queued it, in whichever worker it runs.

Without a provider (the API's default does nothing) nothing is started and
nothing is added to the job: one check per enqueue and per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind
except ImportError:  # not installed: no spans
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from jobs.task import JobResult

CARRIER = "trace"  # the key of the job's meta that carries the context
NOTHING: AbstractContextManager[Any] = nullcontext()


def enabled() -> bool:
    """Whether a TracerProvider was set in this process (set_tracer_provider(),
    or OTEL_PYTHON_TRACER_PROVIDER once the API read it)."""
    # The API's set-once global, read directly: get_tracer_provider() looks
    # up os.environ each time (0.7 us, on every enqueue and run).
    return trace is not None and trace._TRACER_PROVIDER is not None


@contextmanager
def enqueue_span(task_path: str, options: dict[str, Any]) -> Iterator[Any]:
    """A span around one enqueue; `options` get the meta that carries it."""
    tracer = trace.get_tracer("jobs")
    with tracer.start_as_current_span(
        f"enqueue {task_path}",
        kind=SpanKind.PRODUCER,
        attributes={"jobs.task": task_path},
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        options["meta"] = {**(options.get("meta") or {}), CARRIER: carrier}
        yield span


def traced(enqueue: Any, task: Any, args: Any, kwargs: Any, options: Any) -> JobResult:
    """`enqueue(task, args, kwargs, **options)` in an enqueue span."""
    with enqueue_span(task.module_path, options) as span:
        result: JobResult = enqueue(task, args, kwargs, **options)
        span.set_attribute("jobs.job_id", result.id)
        return result


async def atraced(
    aenqueue: Any, task: Any, args: Any, kwargs: Any, options: Any
) -> JobResult:
    """See traced()."""
    with enqueue_span(task.module_path, options) as span:
        result: JobResult = await aenqueue(task, args, kwargs, **options)
        span.set_attribute("jobs.job_id", result.id)
        return result


def run_span(result: JobResult) -> AbstractContextManager[Any]:
    """A span around one run of `result`'s job, a child of its enqueue's."""
    if not enabled():
        return NOTHING
    carrier = (result.meta or {}).get(CARRIER)
    parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
    return trace.get_tracer("jobs").start_as_current_span(
        f"run {result.task.module_path}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "jobs.task": result.task.module_path,
            "jobs.job_id": result.id,
            "jobs.attempt": result.attempts,
            "jobs.queue": result.task.queue_name,
        },
    )
