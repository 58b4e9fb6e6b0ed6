"""jobs.celery: Celery's task and result API over our backend, jobs run by an
in-process burst worker (drain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.utils import timezone

from jobs import ResultTimeout
from jobs.celery import AsyncResult, chain, chord, group, shared_task
from jobs.testing import drain
from tests import celery_tasks, tasks
from tests.celery_tasks import add as _add

pytestmark = pytest.mark.django_db(transaction=True)


def test_delay_and_the_result_api():
    result = _add.delay(2, 3)
    assert result.state == "PENDING" and not result.ready()
    assert result.result is None and result.traceback is None
    drain()
    assert result.ready() and result.successful() and not result.failed()
    assert result.state == result.status == "SUCCESS"
    assert result.get(timeout=1) == 5 and result.result == 5
    assert AsyncResult(result.id).get(timeout=1) == 5


def test_a_failure_is_failure_with_the_exception_and_traceback(r):
    result = celery_tasks.always_bad.delay("test:bad")
    drain()  # the first run, then its autoretry (max_retries=1)
    assert r.get("test:bad") == b"2"
    assert result.state == "FAILURE" and result.failed() and result.ready()
    assert isinstance(result.result, ValueError)
    assert "still bad" in result.traceback and "Traceback" in result.traceback
    with pytest.raises(ValueError, match="still bad"):
        result.get(timeout=1)
    error = result.get(timeout=1, propagate=False)
    assert isinstance(error, ValueError)


def test_bind_gives_the_request():
    result = celery_tasks.who_am_i.delay()
    drain()
    assert result.get(timeout=1) == {
        "id": result.id,
        "retries": 0,
        "name": "tests.celery_tasks.who_am_i",
    }


def test_self_retry_runs_again_then_raises_the_exception(r):
    result = celery_tasks.retries_then_gives_up.delay("test:retries")
    for _ in range(3):
        drain()
    assert r.lrange("test:retries", 0, -1) == [b"0", b"1", b"2"]
    with pytest.raises(KeyError):
        result.get(timeout=1)


def test_self_retry_then_success_counts_retries(r):
    result = celery_tasks.succeeds_on_third.delay("test:third")
    drain()  # retries due at once run in the same burst
    assert result.get(timeout=1) == 2


def test_autoretry_for_with_backoff_on_a_coroutine(r):
    result = celery_tasks.flaky_connection.delay("test:flaky")
    for _ in range(3):
        drain()
    assert result.get(timeout=1) == 3
    # Each retried attempt is recorded with its own error (before: arq's
    # Retry, "<Retry defer 0.01s>", which is also what the worker logged).
    errors = result._backend().get_result(result.id).errors
    assert [e.exception_class_path for e in errors] == ["builtins.ConnectionError"] * 2
    assert [e.message for e in errors] == ["run 1", "run 2"]


def test_apply_async_options(r):
    task = celery_tasks.on_reports
    assert task.task.queue_name == "reports" and task.task.timeout == 30
    assert task.task.priority == 90
    later = task.apply_async((1,), countdown=60, queue="default", priority=2)
    job = later._backend().get_result(later.id)
    assert job.task.queue_name == "default" and job.task.priority == 20
    assert job.task.run_after > timezone.now() + timedelta(seconds=50)
    eta = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)  # naive: UTC
    at = task.apply_async(args=[2], eta=eta, expires=7200, task_id="celery-eta")
    assert at.id == "celery-eta"
    record = task.task.get_backend().results.get("celery-eta")
    assert record["run_after"].startswith(eta.isoformat()[:16])
    expires_at = datetime.fromisoformat(record["expires_at"])
    assert abs(expires_at - (timezone.now() + timedelta(hours=2))) < timedelta(
        seconds=5
    )
    with pytest.raises(TypeError, match="link"):
        task.apply_async((1,), link=_add.s())


def test_revoke_a_queued_job(r):
    result = _add.apply_async((1, 2), countdown=30)
    result.revoke()
    assert result.state == "REVOKED" and result.ready() and result.failed()


def test_get_times_out_as_celery():
    result = _add.apply_async((1, 2), countdown=30)
    with pytest.raises(TimeoutError):
        result.get(timeout=0.1)
    with pytest.raises(ResultTimeout):
        result.get(timeout=0.1)


def test_an_unknown_id_is_pending_but_get_says_it_does_not_exist():
    # docs/celery.md: Celery's get() would wait out the timeout.
    unknown = AsyncResult("no-such-job")
    assert unknown.state == "PENDING" and not unknown.ready()
    with pytest.raises(TaskResultDoesNotExist):
        unknown.get(timeout=1)


def test_signatures_in_chain_group_chord():
    flow = chain(_add.s(1, 2), _add.s(10), _add.si(5, 5)).apply_async()
    fan = group(_add.s(1, 1), _add.s(2, 2)).delay()
    total = chord([_add.s(1, 1), _add.s(2, 2)])(tasks.listed.bind())
    drain()
    assert flow.get(timeout=1) == 10
    assert fan.get(timeout=1) == [2, 4]
    assert total.get(timeout=1) == [[2, 4]]


def test_a_group_of_one_iterable_as_celery_takes_it():
    # Celery's own idiom; before: WorkflowError "takes steps made with
    # task.bind(...), not <generator object ...>".
    fan = group(_add.s(i, i) for i in range(3)).delay()
    drain()
    assert fan.get(timeout=1) == [0, 2, 4]


def test_the_pipe_operator_says_what_to_write_instead():
    # Before: "unsupported operand type(s) for |: 'Step' and 'Step'".
    with pytest.raises(TypeError, match=r"jobs\.celery\.chain\(a, b\)"):
        _add.s(1, 2) | _add.s(3)
    with pytest.raises(TypeError, match=r"write jobs\.chain\(a, b\)"):
        chain(_add.s(1, 2)) | _add.s(3)


def test_each_api_on_the_other_kind_of_task_says_what_to_write():
    # Before: plain "'JobsTask' object has no attribute 'delay'" and the like.
    with pytest.raises(AttributeError, match=r"delay\(\) is \.enqueue\(\.\.\.\)"):
        tasks.add.delay(1, 2)
    with pytest.raises(AttributeError, match=r"add\.task\.enqueue\(\.\.\.\)"):
        _add.enqueue(1, 2)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _add.nope  # noqa: B018
    with pytest.raises(AttributeError, match=r"apply\(\) is not supported: call"):
        _add.apply(args=(1, 2))


def test_unsupported_options_are_refused_by_name():
    with pytest.raises(InvalidTask, match="soft_time_limit"):
        shared_task(soft_time_limit=5)(_add.func)
    with pytest.raises(InvalidTask, match="dotted path"):
        shared_task(name="other.name")(_add.func)


def test_calling_the_task_runs_it_here():
    assert _add(2, 3) == 5
    assert celery_tasks.who_am_i()["retries"] == 0


def test_the_docs_name_every_option_the_code_knows():
    from pathlib import Path

    from jobs import celery

    doc = (Path(__file__).resolve().parents[2] / "docs" / "celery.md").read_text()
    for name in celery.HARMLESS | celery.RETRY_OPTIONS | celery.MAPPED:
        assert f"`{name}" in doc, name


def test_celery_beat_schedules_in_settings_are_read():
    from datetime import timedelta

    from django.test import override_settings

    from jobs.conf import jobs_settings
    from jobs.schedules.static import static_entries

    beat = {
        "every": {"task": "tests.celery_tasks.add", "schedule": 20, "args": (1, 2)},
        "queued": {
            "task": "tests.celery_tasks.add",
            "schedule": timedelta(minutes=1),
            "args": (1, 2),
            "options": {"queue": "reports", "expires": 10},
        },
    }
    with override_settings(CELERY_BEAT_SCHEDULE=beat):
        entries, problems = static_entries(jobs_settings.SCHEDULES)
    assert [e.name for e in entries] == ["every"]
    assert problems == [("queued", problems[0][1])]
    assert "options" in problems[0][1]  # what is left of options is reported
    with override_settings(
        CELERYBEAT_SCHEDULE={
            "queued": {**beat["queued"], "options": {"queue": "reports"}}
        }
    ):
        entries, problems = static_entries(jobs_settings.SCHEDULES)
    assert problems == [] and entries[0].queue_name == "reports"
