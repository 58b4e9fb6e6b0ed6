"""Which of Django's tests cannot apply to JobsBackend, and which fail on a defect.

NOT_APPLICABLE: tests of what only an in-memory backend does, or of what a test
    process cannot see when a worker process runs the job. Skipped, with the reason.
DEFECTS: tests that fail because of a defect of JobsBackend. Strict xfail naming
    the defects: once the last one is fixed the test passes, XPASS(strict) fails
    the run, and its entry here must go.

Keys are "Class.test_method" of Django's tests/tasks; modes are those of the
test modules here (MODE): "drain" runs jobs in-process, "worker" in a worker.
"""

from __future__ import annotations

import pytest

DRAIN = ("drain",)
WORKER = ("worker",)
BOTH = ("drain", "worker")

# Why a test cannot apply.
DUMMY_RESULTS = (
    "reads or edits DummyBackend.results, the in-memory list of enqueued results "
    "only DummyBackend keeps; JobsBackend.results is its result store, read "
    "through get_result()"
)
HAS_RESULTS = (
    "expects ImmediateBackend's lack of get_result(); JobsBackend stores results "
    "(supports_get_result = True)"
)
DEFERS = (
    "expects ImmediateBackend's refusal of run_after; JobsBackend queues jobs, "
    "so it defers them (supports_defer = True)"
)
WORKER_LOGS = (
    "asserts django.tasks log records of the run, which the worker process "
    "writes, not the test's (the drain mode runs the job in-process and checks them)"
)
KEYBOARD_INTERRUPT = (
    "expects the task's KeyboardInterrupt out of enqueue(); a task run by a "
    "worker process raises it there, never in the process that enqueued it"
)

NOT_APPLICABLE: dict[str, tuple[tuple[str, ...], str]] = {
    # test_tasks
    "TaskTestCase.test_enqueue_task": (BOTH, DUMMY_RESULTS),
    "TaskTestCase.test_enqueue_task_async": (BOTH, DUMMY_RESULTS),
    "TaskTestCase.test_task_error_invalid_exception": (WORKER, WORKER_LOGS),
    "TaskTestCase.test_task_error_unknown_module": (WORKER, WORKER_LOGS),
    # test_dummy_backend
    "DummyBackendTestCase.test_enqueue_task": (BOTH, DUMMY_RESULTS),
    "DummyBackendTestCase.test_enqueue_task_async": (BOTH, DUMMY_RESULTS),
    "DummyBackendTestCase.test_refresh_result": (BOTH, DUMMY_RESULTS),
    "DummyBackendTestCase.test_refresh_result_async": (BOTH, DUMMY_RESULTS),
    "DummyBackendTransactionTestCase.test_doesnt_wait_until_transaction_commit_by_default": (
        BOTH,
        DUMMY_RESULTS,
    ),
    # test_immediate_backend
    "ImmediateBackendTestCase.test_cannot_get_result": (BOTH, HAS_RESULTS),
    "ImmediateBackendTestCase.test_cannot_refresh_result": (BOTH, HAS_RESULTS),
    "ImmediateBackendTestCase.test_cannot_pass_run_after": (BOTH, DEFERS),
    "ImmediateBackendTestCase.test_catches_exception": (WORKER, WORKER_LOGS),
    "ImmediateBackendTestCase.test_complex_exception": (WORKER, WORKER_LOGS),
    "ImmediateBackendTestCase.test_complex_return_value": (WORKER, WORKER_LOGS),
    "ImmediateBackendTestCase.test_enqueue_logs": (WORKER, WORKER_LOGS),
    "ImmediateBackendTestCase.test_failed_logs": (WORKER, WORKER_LOGS),
    "ImmediateBackendTestCase.test_throws_keyboard_interrupt": (
        WORKER,
        KEYBOARD_INTERRUPT,
    ),
}

DEFECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def marker(test: str, mode: str) -> pytest.MarkDecorator | None:
    """The skip or strict xfail for `test` ("Class.method") in `mode`, if any."""
    modes, reason = NOT_APPLICABLE.get(test, ((), ""))
    if mode in modes:
        return pytest.mark.skip(reason=f"not applicable: {reason}")
    modes, causes = DEFECTS.get(test, ((), ()))
    if mode in modes:
        return pytest.mark.xfail(strict=True, reason="defect: " + "; ".join(causes))
    return None
