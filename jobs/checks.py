"""System checks: configuration errors surface in `manage.py check`, not at 3 a.m."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.core import checks

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
