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
