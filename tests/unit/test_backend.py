"""JobsBackend's decisions that need no Redis: which queues, which tasks."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from jobs import ScheduleError
from jobs.backend import JobsBackend
from jobs.exceptions import WorkerError
from jobs.schedules.entries import resolve_task
from jobs.worker.loop import checked_queues
from tests import tasks


def _backend(**params) -> JobsBackend:
    return JobsBackend("default", {"BACKEND": "jobs.backend.JobsBackend", **params})


def _default_with(**params) -> override_settings:
    tasks_setting = {alias: dict(backend) for alias, backend in settings.TASKS.items()}
    tasks_setting["default"].update(params)
    return override_settings(TASKS=tasks_setting)


# QUEUES: [] is Django's "any queue name"; a worker runs what it is told, or
# `default`.


def test_empty_queues_accept_any_name_and_workers_default_to_default():
    backend = _backend(QUEUES=[])
    assert backend.accepts_queue("anything")
    assert backend.queue_order == ["default"]
    assert checked_queues(backend, None) == ["default"]
    assert checked_queues(backend, ["reports", "x-1", "reports"]) == ["reports", "x-1"]


def test_declared_queues_are_the_only_ones_and_keep_their_order():
    backend = _backend(QUEUES=["high", "default", "high"])
    assert backend.queue_order == ["high", "default"]
    assert not backend.accepts_queue("other")
    assert checked_queues(backend, None) == ["high", "default"]
    with pytest.raises(WorkerError, match=r"Queues \['other'\] are not in"):
        checked_queues(backend, ["default", "other"])
    assert _backend().queue_order == ["default"]  # no QUEUES: Django's default


def test_an_empty_queue_name_is_refused_even_when_any_name_goes():
    with pytest.raises(WorkerError, match="A queue name is empty"):
        checked_queues(_backend(QUEUES=[]), ["default", ""])


def test_schedules_take_any_queue_when_queues_is_empty():
    with pytest.raises(ScheduleError, match="'elsewhere' is not one of"):
        resolve_task(tasks.add.module_path, "elsewhere")
    with _default_with(QUEUES=[]):
        on_queue = resolve_task(tasks.add.module_path, "elsewhere")
    assert on_queue.queue_name == "elsewhere"
