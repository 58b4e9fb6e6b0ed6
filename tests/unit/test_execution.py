"""One attempt's pure helpers (jobs.worker.execution): decoding a claim,
retry decisions and delays, the outcome record, records of jobs that could
not run. No Redis: the worker's integration tests run them for real."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from arq.worker import Retry
from django.tasks import task_backends
from django.tasks.base import TaskResultStatus

from jobs.exceptions import JobNotRunnable, SerializationError
from jobs.records import stamp
from jobs.serialization import JobPayload
from jobs.task import RETRY_BACKOFF_MAX
from jobs.worker.execution import (
    Claimed,
    Runtime,
    _retry_delay,
    _will_retry,
    build_result,
    ended,
    set_fields,
)
from jobs.worker.threads import Threads
from jobs.worker.unrunnable import failed_record
from tests import tasks

QUEUE = "arq:queue"


@pytest.fixture
def rt():
    threads = Threads(1)
    yield Runtime(backend=task_backends["default"], worker_id="w1", threads=threads)
    threads.shutdown()


def payload(**changes) -> bytes:
    fields = {
        "task_path": "tests.tasks.add",
        "args": [1, 2],
        "kwargs": {},
        "enqueued_ms": 1_700_000_000_000,
        "queue_name": "default",
        "backend": "default",
    }
    return JobPayload(**{**fields, **changes}).encode()


def test_a_claim_decodes_its_payload_once_and_keeps_a_refusal():
    good = Claimed.decoded("j1", payload(), 1, QUEUE)
    assert good.job is not None and good.task_path == "tests.tasks.add"
    bad = Claimed.decoded("j2", b"\x80pickled", 1, QUEUE)
    assert bad.job is None and isinstance(bad.error, SerializationError)
    assert bad.task_path == "-"


def test_build_result_reads_the_payload_as_the_enqueuer_wrote_it():
    job = JobPayload.decode(
        payload(queue_name="reports", run_after_ms=1_700_000_060_000)
    )
    result = build_result(Claimed("j", None, 1, QUEUE), job, tasks.add)
    assert result.task.queue_name == "reports"
    assert result.task.run_after == datetime.fromtimestamp(1_700_000_060, UTC)
    assert result.enqueued_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert result.status == TaskResultStatus.READY and result.args == [1, 2]


def test_retries_only_what_the_task_asks_for_and_within_its_attempts(rt):
    flaky = tasks.flaky  # max_attempts=3, retry_on=(ConnectionError,)
    assert _will_retry(rt, flaky, 1, ConnectionError())
    assert _will_retry(rt, flaky, 2, Retry(defer=1))
    assert not _will_retry(rt, flaky, 3, ConnectionError())  # the last attempt
    assert not _will_retry(rt, flaky, 1, ValueError())
    assert not _will_retry(rt, tasks.add, 1, ValueError())  # retry_on is empty


def test_retry_delays_double_with_jitter_up_to_the_cap():
    task = tasks.add.using()  # retry_backoff 1.0
    for attempt, full in ((1, 1.0), (2, 2.0), (3, 4.0), (30, RETRY_BACKOFF_MAX)):
        delays = [_retry_delay(task, attempt, ValueError()) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 10  # jitter spreads them
    assert _retry_delay(task, 1, Retry(defer=2.5)) == 2.5  # arq's Retry says when


def test_ended_builds_the_final_record_from_the_running_one():
    job = JobPayload.decode(payload())
    result = build_result(Claimed("j", None, 1, QUEUE), job, tasks.add)
    running = result.to_record()
    running["progress"] = {"done": 1, "total": 1, "message": "", "updated_at": "x"}
    outcome = ended(result, running, TaskResultStatus.SUCCESSFUL, return_value=3)
    assert outcome.record["status"] == "SUCCESSFUL"
    assert outcome.record["return_value"] == 3
    assert outcome.record["finished_at"] is not None
    assert outcome.retry_at_ms is None and outcome.result is result
    assert result.progress == running["progress"]
    retry = ended(result, running, TaskResultStatus.READY, retry_in=2)
    assert retry.record["status"] == "READY" and retry.record["finished_at"] is None
    assert "return_value" not in retry.record and retry.retry_at_ms is not None


def test_the_record_stamps_a_first_and_a_later_attempts_start():
    """A first attempt's start is its last attempt (one datetime, stamped once);
    a retry's first start is kept apart from its last."""
    job = JobPayload.decode(payload())
    result = build_result(Claimed("j", None, 1, QUEUE), job, tasks.add)
    first = datetime(2026, 12, 2, 13, 0, 0, 123_456, tzinfo=UTC)
    set_fields(result, started_at=first, last_attempted_at=first)
    record = result.to_record()
    assert record["started_at"] == record["last_attempted_at"] == stamp(first)
    later = datetime(2026, 12, 2, 14, 0, 0, 1, tzinfo=UTC)
    set_fields(result, last_attempted_at=later)
    record = result.to_record()
    assert (record["started_at"], record["last_attempted_at"]) == (
        stamp(first),
        stamp(later),
    )
    set_fields(result, started_at=None, last_attempted_at=None)
    record = result.to_record()
    assert record["started_at"] is record["last_attempted_at"] is None


def test_a_job_that_cannot_run_is_recorded_failed_with_what_is_known(rt):
    claimed = Claimed.decoded("j", payload(queue_name="reports"), 1, QUEUE)
    record = failed_record(rt, claimed, JobNotRunnable("expired"), None)
    assert record["status"] == "FAILED" and record["finished_at"] is not None
    assert (record["task"], record["args"], record["queue"]) == (
        "tests.tasks.add",
        [1, 2],
        "reports",
    )
    assert record["worker_ids"] == ["w1"]
    error = record["errors"][-1]
    assert error["exception_class_path"] == "jobs.exceptions.JobNotRunnable"
    assert error["message"] == "expired"


def test_a_failure_keeps_the_earlier_attempts_history(rt):
    unreadable = Claimed.decoded("j", b"not json", 2, QUEUE)
    previous = failed_record(rt, unreadable, ValueError("first"), None)
    again = failed_record(rt, unreadable, ValueError("second"), previous)
    assert [e["message"] for e in again["errors"]] == ["first", "second"]
    assert again["worker_ids"] == ["w1", "w1"]
    assert again["task"] == ""  # nothing could be read of the payload
