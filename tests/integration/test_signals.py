"""jobs.signals: task_retried, task_failed, worker_ready, worker_stopping, sent
by a real (in-process, burst) worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.dispatch import Signal

from jobs import signals
from jobs.backend import JobsBackend
from jobs.testing import drain
from jobs.worker import JobsWorker
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard() -> Iterator[list[tuple[str, Any, dict[str, Any]]]]:
    """What each signal of jobs.signals was sent with, in order."""
    got: list[tuple[str, Any, dict[str, Any]]] = []
    receivers = {}
    for name in ("task_retried", "task_failed", "worker_ready", "worker_stopping"):

        def receiver(sender: Any, name: str = name, **named: Any) -> None:
            named.pop("signal")
            got.append((name, sender, named))

        signal: Signal = getattr(signals, name)
        signal.connect(receiver, weak=False)
        receivers[name] = receiver
    yield got
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_retries_failures_and_the_worker_s_life(heard):
    flaky = tasks.flaky.enqueue("test:signals")  # fails twice, then succeeds
    boom = tasks.boom.enqueue("final")
    drain()
    names = [name for name, _, _ in heard]
    assert names[0] == "worker_ready" and names[-1] == "worker_stopping"
    assert sorted(names[1:-1]) == ["task_failed", "task_retried", "task_retried"]
    retried = [named for name, _, named in heard if name == "task_retried"]
    assert {r["task_result"].id for r in retried} == {flaky.id}
    assert all(isinstance(r["exception"], ConnectionError) for r in retried)
    assert all(r["delay"] >= 0 for r in retried)
    [(_, sender, failed)] = [h for h in heard if h[0] == "task_failed"]
    assert sender is JobsBackend and failed["task_result"].id == boom.id
    assert str(failed["exception"]) == "final"
    assert isinstance(heard[0][2]["worker"], JobsWorker)


def test_a_receiver_that_raises_changes_nothing(heard, caplog):
    def broken(sender: Any, **named: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.task_failed.connect(broken, weak=False)
    try:
        result = tasks.boom.enqueue("final")
        drain()
    finally:
        signals.task_failed.disconnect(broken)
    result.refresh()
    assert result.status == "FAILED"
    assert "signal receiver" in caplog.text and "receiver bug" in caplog.text
