"""Results in a Django cache, as JSON records.

`ResultStore` goes through any Django cache's API. When the cache is Django's
RedisCache with our JSON serializer, `RedisResultStore` reads and writes the same
keys and bytes natively (async without a thread hop); if that cache lives on the
queue's Redis the record is written inside the queue's own scripts, so storing a
result costs no extra round trip. Either way `caches[alias].get(key)` reads it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.core.cache import BaseCache
from django.tasks.base import TaskResultStatus

from jobs import serialization
from jobs.constants import RESULT_KEY_PREFIX
from jobs.exceptions import SerializationError
from jobs.failures import JobTaskError

if TYPE_CHECKING:
    from jobs.conf import JobsOptions
    from jobs.task import JobResult, JobsTask

Record = dict[str, Any]


class ResultStore:
    """Result records through a Django cache's own API."""

    colocated = False  # True when the queue's scripts can write the record

    def __init__(self, cache: BaseCache, ttl: int) -> None:
        self.cache = cache
        self.ttl = ttl  # seconds

    def key(self, result_id: str) -> str:
        return RESULT_KEY_PREFIX + result_id

    def get(self, result_id: str) -> Record | None:
        record: Record | None = self.cache.get(self.key(result_id))
        return record

    def set(self, record: Record, *, only_new: bool = False) -> None:
        """Store `record`; with `only_new`, leave an existing one alone."""
        write = self.cache.add if only_new else self.cache.set
        write(self.key(record["id"]), record, self.ttl)

    async def aget(self, result_id: str) -> Record | None:
        """See get()."""
        return await sync_to_async(self.get, thread_sensitive=False)(result_id)

    async def aset(self, record: Record, *, only_new: bool = False) -> None:
        """See set()."""
        await sync_to_async(self.set, thread_sensitive=False)(record, only_new=only_new)


class RedisResultStore(ResultStore):
    """The same records, read and written natively on the cache's Redis."""

    def __init__(
        self, cache: BaseCache, ttl: int, options: JobsOptions, *, colocated: bool
    ) -> None:
        super().__init__(cache, ttl)
        self.options = options  # connection settings of the cache's server
        self.colocated = colocated

    def raw_key(self, result_id: str) -> str:
        """The Redis key, with the cache's KEY_PREFIX and VERSION applied."""
        # Not make_and_validate_key(): its memcached checks cost ~30 µs a call
        # and ids are checked where they come in (backend.RESULT_ID).
        return self.cache.make_key(self.key(result_id))

    def get(self, result_id: str) -> Record | None:
        from jobs.connections import sync_client

        raw = cast(
            "bytes | None", sync_client(self.options).get(self.raw_key(result_id))
        )
        return None if raw is None else decode(raw)

    def set(self, record: Record, *, only_new: bool = False) -> None:
        from jobs.connections import sync_client

        sync_client(self.options).set(
            self.raw_key(record["id"]), encode(record), ex=self.ttl, nx=only_new
        )

    async def aget(self, result_id: str) -> Record | None:
        from jobs.connections import async_client

        raw: bytes | None = await async_client(self.options).get(
            self.raw_key(result_id)
        )
        return None if raw is None else decode(raw)

    async def aset(self, record: Record, *, only_new: bool = False) -> None:
        from jobs.connections import async_client

        await async_client(self.options).set(
            self.raw_key(record["id"]), encode(record), ex=self.ttl, nx=only_new
        )


def encode(record: Record) -> bytes:
    return serialization.dumps(record)


def decode(raw: bytes) -> Record:
    record = serialization.loads(raw)
    if not isinstance(record, dict) or "id" not in record or "status" not in record:
        raise SerializationError("refused a malformed result record")
    return record


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def to_record(result: JobResult, **extra: Any) -> Record:
    """Return the JSON record of `result` (`extra`: return_value, progress)."""
    task = result.task
    if result.meta:
        extra["meta"] = result.meta
    return {
        "id": result.id,
        "task": task.module_path,
        "backend": result.backend,
        "queue": task.queue_name,
        "priority": task.priority,
        "run_after": _iso(task.run_after),
        "args": result.args,
        "kwargs": result.kwargs,
        "status": str(result.status),
        "enqueued_at": _iso(result.enqueued_at),
        "started_at": _iso(result.started_at),
        "finished_at": _iso(result.finished_at),
        "last_attempted_at": _iso(result.last_attempted_at),
        "errors": errors_of(result),
        "worker_ids": list(result.worker_ids),
        **extra,
    }


def errors_of(result: JobResult) -> list[dict[str, str]]:
    return [
        {
            "exception_class_path": e.exception_class_path,
            "traceback": e.traceback,
            "message": getattr(e, "message", ""),
        }
        for e in result.errors
    ]


def from_record(record: Record, task: JobsTask) -> JobResult:
    """Rebuild the JobResult of `record`, for `task` (already looked up)."""
    from jobs.task import JobResult

    run_after = _dt(record.get("run_after"))
    if run_after is not None or record.get("queue") != task.queue_name:
        task = task.using(queue_name=record.get("queue"), run_after=run_after)
    result = JobResult(
        task=task,
        id=record["id"],
        status=TaskResultStatus(record["status"]),
        enqueued_at=_dt(record.get("enqueued_at")),
        started_at=_dt(record.get("started_at")),
        finished_at=_dt(record.get("finished_at")),
        last_attempted_at=_dt(record.get("last_attempted_at")),
        args=record.get("args", []),
        kwargs=record.get("kwargs", {}),
        backend=record.get("backend", task.backend),
        errors=[JobTaskError(**e) for e in record.get("errors", [])],
        worker_ids=record.get("worker_ids", []),
        meta=record.get("meta"),
        progress=record.get("progress"),
    )
    object.__setattr__(result, "_return_value", record.get("return_value"))
    return result


def build_store(options: JobsOptions) -> ResultStore:
    """Return the store for OPTIONS: RESULTS_CACHE, or a Redis cache on REDIS_URL."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    if options.results_cache is None:
        cache = RedisCache(
            options.redis_url,
            {"OPTIONS": {"serializer": "jobs.serialization.CacheSerializer"}},
        )
        return RedisResultStore(cache, options.result_ttl, options, colocated=True)
    shared = caches[options.results_cache]
    if isinstance(shared, RedisCache) and same_redis(shared, options.redis_url):
        return RedisResultStore(shared, options.result_ttl, options, colocated=True)
    return ResultStore(shared, options.result_ttl)


def same_redis(cache: Any, redis_url: str) -> bool:
    """Whether a RedisCache uses our serializer on the queue's server and database."""
    from urllib.parse import urlsplit

    servers = getattr(cache, "_servers", [])
    if len(servers) != 1 or not uses_json(cache):
        return False

    def where(url: str) -> tuple[str | None, int | None, str]:
        parts = urlsplit(url)
        return parts.hostname, parts.port or 6379, parts.path.strip("/") or "0"

    return where(servers[0]) == where(redis_url)


def uses_json(cache: Any) -> bool:
    """Whether a RedisCache is configured with jobs' CacheSerializer (or a subclass)."""
    from django.utils.module_loading import import_string

    serializer = getattr(cache, "_options", {}).get("serializer")
    if isinstance(serializer, str):
        try:
            serializer = import_string(serializer)
        except ImportError:
            return False
    if not isinstance(serializer, type):
        serializer = type(serializer)
    return issubclass(serializer, serialization.CacheSerializer)
