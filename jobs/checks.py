"""System checks: configuration errors surface in `manage.py check`, not at 3 a.m."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.tasks import task_backends
from redis.connection import parse_url
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
    yield from check_redis_results_cache(where, alias, config)


def check_redis_results_cache(
    where: str, alias: str, config: dict[str, Any]
) -> Iterator[checks.CheckMessage]:
    """Yield what is wrong with a Redis cache that keeps results."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches[alias], RedisCache):
        return
    if not uses_json(caches[alias]):
        yield checks.Error(
            f"{where}: RESULTS_CACHE {alias!r} is a Redis cache that pickles values; "
            "results come back from Redis and must never be unpickled.",
            hint=f'Set CACHES[{alias!r}]["OPTIONS"]["serializer"] = '
            f'"{JSON_SERIALIZER}".',
            id="jobs.E004",
        )
    if config.get("OPTIONS", {}).get("socket_timeout") is None:
        # The cache is the user's (other code may use it): its options are
        # theirs to set, and REDIS_OPTIONS' timeout does not reach it.
        yield checks.Warning(
            f"{where}: RESULTS_CACHE {alias!r} is a Redis cache without a "
            "socket_timeout: on a Redis that stops answering, enqueue (it writes "
            "the READY record there) and result reads (get_result, refresh, get) "
            "wait until it answers again.",
            hint=f'Set CACHES[{alias!r}]["OPTIONS"]["socket_timeout"] (seconds; '
            "the queue's own calls use 5): the call then raises QueueUnavailable "
            "after it.",
            id="jobs.W002",
        )


LOOPBACK = ("localhost", "127.0.0.1", "::1")  # one host, however it is spelled


@checks.register("jobs")
def check_shared_queues(
    app_configs: object = None, **kwargs: object
) -> list[checks.CheckMessage]:
    """Warn of two backends that queue into one Redis database under the same
    queue names: a worker of either claims the other's jobs and fails them."""
    ours = [
        (backend.alias, backend.queues, config)
        for backend in task_backends.all()
        if isinstance(config := getattr(backend, "config", None), JobsOptions)
        and getattr(backend, "config_error", None) is None
    ]
    warnings: list[checks.CheckMessage] = []
    for (a, a_queues, a_config), (b, b_queues, b_config) in combinations(ours, 2):
        shared = shared_queues(a_queues, b_queues)
        if shared and redis_database(a_config) == redis_database(b_config):
            warnings.append(
                checks.Warning(
                    f"TASKS[{a!r}] and TASKS[{b!r}] queue jobs in one Redis "
                    f"database ({redact(a_config.redis_url)}) under {shared}: a "
                    "worker of either claims the other's jobs and records them "
                    "FAILED (JobNotRunnable).",
                    hint=f"Give TASKS[{b!r}] a Redis database of its own (another "
                    "REDIS_URL, or the same server ending /1, /2...), or QUEUES "
                    f"that TASKS[{a!r}] does not accept.",
                    id="jobs.W001",
                )
            )
    return warnings


def shared_queues(a: set[str], b: set[str]) -> str:
    """The queue names two backends both accept ("" for none); an empty set is
    Django's QUEUES [], any name."""
    if not a and not b:
        return "any queue name (both have QUEUES [])"
    names = sorted(a & b if a and b else a or b)
    if not names:
        return ""
    return "queue" + "s" * (len(names) > 1) + " " + ", ".join(map(repr, names))


def redis_database(config: JobsOptions) -> tuple[Any, ...]:
    """Where a backend's keys live, however its REDIS_URL spells it."""
    sentinel = config.sentinel
    if sentinel is not None:
        sentinels = frozenset((_host(h), port) for h, port in sentinel.sentinels)
        return sentinels, sentinel.service, sentinel.db
    address = {**parse_url(config.redis_url), **config.redis_options}  # type: ignore[no-untyped-call]
    server = address.get("path") or (
        _host(address.get("host", "localhost")),
        int(address.get("port", 6379)),
    )
    return server, int(address.get("db", 0))


def _host(name: str) -> str:
    return "localhost" if name.lower() in LOOPBACK else name.lower()


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
