"""The harness around Django's tests: what it changed, what it skips, who runs jobs."""

from __future__ import annotations

import importlib
import os
import unittest

from django.test import override_settings

from tests.django_suite import backends, expectations, source
from tests.django_suite.conftest import SuiteWorker
from tests.django_suite.suite import load_classes

RUNNING = {"default": {"BACKEND": "tests.django_suite.backends.RunningBackend"}}


def test_the_adaptation_changes_only_lines_naming_djangos_backends():
    original, adapted = source.original(), source.adapted() / source.PACKAGE
    changed = 0
    for path in sorted(original.glob("*.py")):
        before = path.read_text().splitlines()
        after = (adapted / path.name).read_text().splitlines()
        assert len(before) == len(after), path.name
        for old, new in zip(before, after, strict=True):
            if old != new:
                changed += 1
                assert source.LEFTOVER.search(old), (path.name, old, new)
                assert not source.LEFTOVER.search(new), (path.name, new)
    assert changed > 0


def test_every_expectation_names_one_of_djangos_tests():
    names = {
        f"{cls.__name__}.{method}"
        for cls in load_classes().values()
        for method in unittest.TestLoader().getTestCaseNames(cls)
    }
    assert len(names) >= 80  # Django 6.1 has 85
    listed = set(expectations.NOT_APPLICABLE) | set(expectations.DEFECTS)
    assert listed <= names, sorted(listed - names)


def test_no_test_is_both_not_applicable_and_a_defect_in_one_mode():
    for test, (skipped_in, _) in expectations.NOT_APPLICABLE.items():
        failing_in, _ = expectations.DEFECTS.get(test, ((), ()))
        assert not set(skipped_in) & set(failing_in), test


def _meaning_of_life_worker_pid() -> int:
    module = importlib.import_module(f"{source.PACKAGE}.tasks")
    with override_settings(TASKS=RUNNING):
        result = module.calculate_meaning_of_life.enqueue()
    assert result.return_value == 42
    return int(result.worker_ids[0].split(":")[1])


def test_the_drain_mode_runs_jobs_in_this_process():
    assert _meaning_of_life_worker_pid() == os.getpid()


def test_the_worker_mode_runs_jobs_in_the_worker_process(suite_worker: SuiteWorker):
    suite_worker.ensure_running()
    assert suite_worker.process is not None
    with backends.running_with(backends.Worker(suite_worker.death)):
        pid = _meaning_of_life_worker_pid()
    assert pid == suite_worker.process.proc.pid
