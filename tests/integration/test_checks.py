"""Misconfiguration surfaces in `manage.py check` as errors with hints."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.servers import free_port

# The model checks open the database (its features); alone, this file has no
# test before it that did.
pytestmark = pytest.mark.django_db


def _tasks(**options):
    base = settings.TASKS["default"]
    return {"default": {**base, "OPTIONS": {**base["OPTIONS"], **options}}}


def _caches(**extra):
    return {**settings.CACHES, **extra}


def test_the_test_configuration_is_clean():
    call_command("check", fail_level="WARNING")


@pytest.mark.parametrize(
    ("tasks", "caches", "error"),
    [
        (_tasks(REDIS_URL="http://nope"), None, "jobs.E001"),
        (_tasks(REDIS_URL="redis+sentinel://h:26379"), None, "master's name"),
        (_tasks(LEASE=-1), None, "jobs.E001"),
        (_tasks(RESULTS_CACHE="missing"), None, "jobs.E002"),
        (
            _tasks(RESULTS_CACHE="local"),
            _caches(local={"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}),
            "jobs.E003",
        ),
        (
            _tasks(RESULTS_CACHE="pickles"),
            _caches(
                pickles={
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": "redis://127.0.0.1:1/0",
                }
            ),
            "jobs.E004",
        ),
    ],
)
def test_misconfiguration_is_a_system_check_error(tasks, caches, error):
    overrides = {"TASKS": tasks, **({"CACHES": caches} if caches else {})}
    with override_settings(**overrides), pytest.raises(SystemCheckError, match=error):
        call_command("check")


def test_a_bad_backend_config_raises_when_used():
    from django.tasks.exceptions import InvalidTaskBackend

    from tests import tasks

    with override_settings(TASKS=_tasks(REDIS_URL="http://nope")):
        with pytest.raises(InvalidTaskBackend, match="must start with redis://"):
            tasks.add.enqueue(1, 2)


def test_deploy_check_pings_redis(redis_url):
    call_command("check", deploy=True, tags=["jobs"])  # the session's Redis answers
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(TASKS=_tasks(REDIS_URL=closed)):
        call_command("check")  # a plain check does not need Redis up
        with pytest.raises(SystemCheckError, match=r"jobs\.E020") as caught:
            call_command("check", deploy=True, tags=["jobs"])
    assert f"Redis at {closed} does not answer" in str(caught.value)


def _two(b_url=None, a_queues=("default",), b_queues=("default",)):
    """TASKS with a second backend 'b' beside 'default' (on the session's Redis)."""
    base = settings.TASKS["default"]
    b_options = {**base["OPTIONS"], **({"REDIS_URL": b_url} if b_url else {})}
    return {
        "default": {**base, "QUEUES": list(a_queues)},
        "b": {**base, "QUEUES": list(b_queues), "OPTIONS": b_options},
    }


def _respelled(url, db):
    """The same server as `url` spelled otherwise, on database `db`."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    return f"redis://localhost:{port}?db={db}"


@pytest.mark.parametrize(
    ("b_db", "a_queues", "b_queues", "shared"),
    [
        (None, ["default", "reports"], ["reports", "default"], "'default', 'reports'"),
        ("same", ["default"], ["default"], "queue 'default'"),  # localhost, ?db=
        (None, [], ["reports"], "queue 'reports'"),  # [] accepts any name
        (None, [], [], "any queue name"),
    ],
)
def test_two_backends_sharing_a_database_and_queues_are_warned_of(
    redis_url, b_db, a_queues, b_queues, shared
):
    db = int(redis_url.rsplit("/", 1)[1])
    b_url = _respelled(redis_url, db) if b_db == "same" else None
    with override_settings(TASKS=_two(b_url, a_queues, b_queues)):
        with pytest.raises(SystemCheckError, match=r"jobs\.W001") as caught:
            call_command("check", fail_level="WARNING")
    message = str(caught.value)
    assert "TASKS['default'] and TASKS['b'] queue jobs in one Redis database" in message
    assert shared in message
    assert "Give TASKS['b'] a Redis database of its own" in message


@pytest.mark.parametrize(
    ("b_db", "b_queues"),
    [(1, ["default"]), (None, ["reports"])],  # another database; queues of its own
)
def test_backends_kept_apart_are_not_warned_of(redis_url, b_db, b_queues):
    b_url = _respelled(redis_url, b_db) if b_db is not None else None
    with override_settings(TASKS=_two(b_url, ["default"], b_queues)):
        call_command("check", fail_level="WARNING")


@pytest.mark.django_db(transaction=True)
def test_what_the_warning_says_happens(redis_url):
    from django.tasks import task_backends

    from jobs.testing import drain
    from tests import tasks

    with override_settings(TASKS=_two()):
        result = tasks.add.using(backend="b").enqueue(1, 2)
        drain("default")  # a worker of the other backend, on the same queue
        result = task_backends["b"].get_result(result.id)
    assert result.status == "FAILED"
    error = result.errors[-1]
    assert error.exception_class_path == "jobs.exceptions.JobNotRunnable"
    assert "'b'" in error.traceback and "'default'" in error.traceback
