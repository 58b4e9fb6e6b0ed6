from __future__ import annotations

import pytest
from django.tasks.base import TaskError

from jobs import RemoteTraceback, TaskFailed
from jobs.failures import JobTaskError, capture, raise_remote


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


def _raise(exc):
    try:
        raise exc
    except Exception as e:
        return capture(e)


def test_capture_records_class_message_and_traceback():
    error = _raise(ValueError("bad value"))
    assert error.exception_class_path == "builtins.ValueError"
    assert error.message == "bad value"
    assert "Traceback (most recent call last)" in error.traceback
    assert "_raise" in error.traceback


def test_reraises_the_original_class_with_remote_traceback():
    error = _raise(KeyError("missing"))
    with pytest.raises(KeyError) as excinfo:
        raise_remote(error)
    cause = excinfo.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "_raise" in cause.tb
    assert "_raise" in str(cause)


def test_unloaded_class_becomes_task_failed():
    error = JobTaskError(
        exception_class_path="not_imported_anywhere.Boom", traceback="tb", message="m"
    )
    with pytest.raises(TaskFailed, match=r"not_imported_anywhere\.Boom: m") as excinfo:
        raise_remote(error)
    assert excinfo.value.exception_class_path == "not_imported_anywhere.Boom"
    assert isinstance(excinfo.value.__cause__, RemoteTraceback)


@pytest.mark.parametrize(
    "path",
    ["os.system", "builtins.len", f"{__name__}.NeedsTwoArgs", "builtins.BaseException"],
)
def test_non_exceptions_and_unbuildable_classes_are_not_called(path):
    with pytest.raises(TaskFailed):
        raise_remote(TaskError(exception_class_path=path, traceback="tb"))
