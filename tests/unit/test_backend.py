"""JobsBackend's decisions that need no Redis: which queues, which tasks."""

from __future__ import annotations

from unittest import mock

import pytest
from django.apps import apps
from django.conf import settings
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTask
from django.test import override_settings
from django.utils import timezone

from jobs import ScheduleError, registry
from jobs.backend import JobsBackend
from jobs.exceptions import WorkerError
from jobs.schedules.entries import resolve_task
from jobs.worker.startup import checked_queues
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


# Validation is remembered per backend, with the flags it was checked against.


def test_a_flag_changed_after_validation_is_checked_again():
    backend = task_backends["default"]
    backend.validate_task(tasks.aadd)  # remembered as valid
    with mock.patch.multiple(backend, supports_async_task=False):
        with pytest.raises(InvalidTask, match="does not support async Tasks"):
            backend.validate_task(tasks.aadd)
    with mock.patch.multiple(JobsBackend, supports_defer=False):
        backend.validate_task(tasks.aadd)  # run_after None: defer is irrelevant
        with pytest.raises(InvalidTask, match="does not support run_after"):
            backend.validate_task(tasks.aadd.using(run_after=timezone.now()))
    backend.validate_task(tasks.aadd)


def test_what_passed_is_remembered_until_the_apps_change():
    backend = task_backends["default"]
    backend.validate_task(tasks.add)
    assert tasks.add in backend.validated.values()
    with override_settings(INSTALLED_APPS=settings.INSTALLED_APPS):
        assert tasks.add not in backend.validated.values()


# Workers import every INSTALLED_APPS app's tasks, whatever the registry holds.


def test_tasks_of_installed_apps_stay_discoverable_when_available_apps_narrow():
    entries = [
        "jobs.apps.JobsConfig" if entry == "jobs" else entry
        for entry in settings.INSTALLED_APPS
    ]
    with override_settings(INSTALLED_APPS=entries):
        apps.set_available_apps([])  # what TransactionTestCase.available_apps does
        try:
            assert registry.discoverable("webproject.tasks")
            assert registry.discoverable("jobs.tasks.reports")  # an AppConfig path
            assert registry.discoverable("tests.tasks")  # OPTIONS["IMPORTS"]
            assert not registry.discoverable("webproject.views")
            assert not registry.discoverable("elsewhere.tasks")
        finally:
            apps.unset_available_apps()
