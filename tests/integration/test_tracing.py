"""jobs.tracing: with OpenTelemetry's SDK set up, an enqueue is a PRODUCER span
under the caller's span, and the run a CONSUMER span under the enqueue's (the
context carried in the job), collected by the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from jobs import tracing
from jobs.testing import drain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    try:
        yield memory
    finally:
        provider.shutdown()
        # The API sets its global provider once per process; put the default
        # back (as opentelemetry's own test utilities do) so later tests run
        # untraced.
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None


def test_a_run_is_a_child_of_the_request_that_queued_it(exporter):
    assert tracing.enabled()
    with trace.get_tracer("test").start_as_current_span("request") as request:
        result = tasks.add.enqueue(2, 3)
    failing = tasks.boom.enqueue("traced")
    drain()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    enqueue, run = spans["enqueue tests.tasks.add"], spans["run tests.tasks.add"]
    assert enqueue.kind == SpanKind.PRODUCER and run.kind == SpanKind.CONSUMER
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert run.parent.span_id == enqueue.context.span_id
    assert run.context.trace_id == request.get_span_context().trace_id
    assert enqueue.attributes["jobs.job_id"] == result.id
    assert run.attributes["jobs.job_id"] == result.id
    assert run.attributes["jobs.attempt"] == 1
    failed = spans["run tests.tasks.boom"]
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.events[0].attributes["exception.message"] == "traced"
    assert failed.parent.span_id == spans["enqueue tests.tasks.boom"].context.span_id
    assert failed.attributes["jobs.job_id"] == failing.id


async def test_async_enqueue_carries_the_context_too(exporter):
    with trace.get_tracer("test").start_as_current_span("view"):
        result = await tasks.aadd.aenqueue(1, 1)
    assert set(result.meta) == {"trace"}  # the W3C traceparent travels in the job
    assert result.meta["trace"]["traceparent"].startswith("00-")


def test_without_a_provider_nothing_is_added():
    assert not tracing.enabled()
    result = tasks.add.enqueue(1, 1)
    assert result.meta is None
