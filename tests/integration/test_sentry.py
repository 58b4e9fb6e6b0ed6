"""jobs.sentry: a job recorded FAILED is one Sentry event, tagged with its task,
job id, attempt and queue; sent through sentry-sdk's own client to a transport
that records envelopes (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from jobs.testing import drain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


class Recording(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@pytest.fixture
def sentry() -> Iterator[Recording]:
    transport = Recording()
    sentry_sdk.init(
        dsn="https://key@sentry.invalid/1",
        transport=transport,
        # No global patches (threads, logging) left behind for later tests.
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    try:
        yield transport
    finally:
        sentry_sdk.init()  # no DSN: the client is inactive again


def events(transport: Recording) -> list[dict[str, Any]]:
    found = [envelope.get_event() for envelope in transport.envelopes]
    return [event for event in found if event is not None]


def test_a_failed_job_is_one_event_with_its_tags(sentry):
    flaky = tasks.flaky.enqueue("test:sentry")  # two retried attempts: no events
    failed = tasks.boom.enqueue("to sentry")
    drain()
    sentry_sdk.flush()
    [event] = events(sentry)
    assert event["tags"] == {
        "task": "tests.tasks.boom",
        "job_id": failed.id,
        "attempt": 1,
        "queue": "default",
    }
    [exception] = event["exception"]["values"]
    assert exception["value"] == "to sentry"
    frames = exception["stacktrace"]["frames"]
    assert frames[-1]["function"] == "boom"  # the task's own frame
    assert event["contexts"]["job"]["args"] == ["to sentry"]
    flaky.refresh()
    assert flaky.status == "SUCCESSFUL"
