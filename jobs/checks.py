"""System checks: configuration errors surface in `manage.py check`, not at 3 a.m."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.core import checks
from django.tasks import task_backends
from redis.exceptions import RedisError

from jobs.conf import JobsOptions, redact
from jobs.redis import connections
from jobs.results import uses_json

if TYPE_CHECKING:
    from jobs.backend import JobsBackend

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
JSON_SERIALIZER = "jobs.serialization.CacheSerializer"


def check_backend(backend: JobsBackend) -> Iterator[checks.CheckMessage]:
    """Yield the configuration errors of one backend (called by its check())."""
    from django.conf import settings

    where = f"TASKS[{backend.alias!r}]"
    if backend.config_error is not None:
        yield checks.Error(
            f"{where}: {backend.config_error}",
            hint="Fix OPTIONS; see the README's configuration section.",
            id="jobs.E001",
        )
        return
    alias = backend.config.results_cache
    if alias is None:
        return
    config = settings.CACHES.get(alias)
    if config is None:
        yield checks.Error(
            f"{where}: RESULTS_CACHE {alias!r} is not in CACHES.",
            hint="Add it to CACHES, or drop RESULTS_CACHE to keep results on Redis.",
            id="jobs.E002",
        )
        return
    if config["BACKEND"] in PER_PROCESS_CACHES:
        yield checks.Error(
            f"{where}: RESULTS_CACHE {alias!r} ({config['BACKEND']}) lives inside one "
            "process; results written by workers would never reach the web server.",
            hint="Use a shared cache (Redis, Memcached, database).",
            id="jobs.E003",
        )
        return
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches[alias]
    if isinstance(cache, RedisCache) and not uses_json(cache):
        yield checks.Error(
            f"{where}: RESULTS_CACHE {alias!r} is a Redis cache that pickles values; "
            "results come back from Redis and must never be unpickled.",
            hint=f'Set CACHES[{alias!r}]["OPTIONS"]["serializer"] = '
            f'"{JSON_SERIALIZER}".',
            id="jobs.E004",
        )


PING_TIMEOUT = 2.0  # seconds the deploy check waits for each Redis


@checks.register("jobs", deploy=True)
def check_redis_answers(
    app_configs: object = None, **kwargs: object
) -> list[checks.CheckMessage]:
    """`manage.py check --deploy`: every JobsBackend's Redis answers PING.

    Only at deploy time: `check` alone runs in builds and CI, where Redis
    may rightly be absent; a bad REDIS_URL is caught there (jobs.E001).
    """
    errors: list[checks.CheckMessage] = []
    for backend in task_backends.all():
        config = getattr(backend, "config", None)
        if not isinstance(config, JobsOptions) or backend.check():
            continue  # not ours, or already reported as misconfigured
        problem = ping(config)
        if problem:
            errors.append(
                checks.Error(
                    f"TASKS[{backend.alias!r}]: Redis at {redact(config.redis_url)} "
                    f"does not answer: {problem}",
                    hint="Start Redis, or fix REDIS_URL / REDIS_OPTIONS. Until it "
                    "answers, enqueue raises QueueUnavailable and workers wait.",
                    id="jobs.E020",
                )
            )
    return errors


def ping(config: JobsOptions) -> str:
    """Why Redis does not answer within PING_TIMEOUT ("" when it does)."""
    client = connections.new_sync_client(
        config,
        socket_connect_timeout=PING_TIMEOUT,
        socket_timeout=PING_TIMEOUT,
        retry=None,
        retry_on_error=[],
    )
    try:
        client.ping()
    except (RedisError, OSError) as e:
        return str(e) or type(e).__name__
    finally:
        client.close()
    return ""
