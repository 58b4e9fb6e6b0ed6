from __future__ import annotations

from types import ModuleType

import pytest
from django.tasks.base import TaskError
from django.utils.module_loading import import_string

import jobs
from jobs.exceptions import AttemptsExhausted, RemoteTraceback
from jobs.failures import raise_remote


def test_all_is_sorted_and_complete():
    public = {
        name
        for name in dir(jobs)
        if not name.startswith("_") and not isinstance(getattr(jobs, name), ModuleType)
    } - {"annotations"}
    assert jobs.__all__ == sorted(jobs.__all__)
    assert set(jobs.__all__) == public


# Dotted paths users type in settings, URLconfs and LOGGING: they keep working
# whatever module the code behind them moves to.
PUBLIC_PATHS = [
    "jobs.backend.JobsBackend",
    "jobs.serialization.CacheSerializer",
    "jobs.dashboard.urls",
    "jobs.dashboard.metrics_view",
    "jobs.exporter.metrics_view",
    "jobs.logs.JobContextFilter",
    "jobs.logs.JsonFormatter",
    "jobs.models.Schedule",
    "jobs.models.default_timezone",
    "jobs.testing.drain",
    "jobs.testing.adrain",
    "jobs.worker.JobsWorker",
]


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_dotted_paths_import(path):
    assert callable(import_string(path))


def test_the_exporter_alias_is_the_dashboards_view():
    from jobs.dashboard import metrics_view
    from jobs.exporter import metrics_view as old

    assert old is metrics_view


@pytest.mark.parametrize(
    "recorded",
    ["jobs.execution.AttemptsExhausted", "jobs.exceptions.AttemptsExhausted"],
)
def test_errors_recorded_under_an_old_path_are_raised_as_their_class(recorded):
    error = TaskError(exception_class_path=recorded, traceback="Traceback ...")
    with pytest.raises(AttemptsExhausted) as raised:
        raise_remote(error)
    assert isinstance(raised.value.__cause__, RemoteTraceback)
