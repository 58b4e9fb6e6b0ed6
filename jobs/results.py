"""Where result records live: a Django cache, written inside the queue's scripts
when that cache is on the queue's own Redis.

Every read goes through the cache's API (`get`, `get_many`; async ones in a
worker thread, as Django's own `aget` does), and so does every write made
outside the queue's scripts (`set`, `add`). When the cache is Django's
RedisCache with our JSON serializer on the queue's Redis (`colocated`), the
queue's Lua scripts write the record in the same round trip as the queue change
(one round trip, atomic with it: a job is never finished without its record);
`script_args()` hands them the key the cache would use and the bytes
`cache.set()` would write, and `store_outside()` has nothing left to do. Either
way `caches[alias].get(key)` reads the record (a contract test:
tests/integration/test_results.py). One writer outside both: RUNNING records go
through the worker's batcher as a plain SET of the same bytes, so they are
ordered before the job's FINISH on one connection (jobs.worker.running).

Only this module knows which case applies: callers always call both steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils.module_loading import import_string

from jobs import serialization
from jobs.records import Record, encode, is_record
from jobs.redis import connections
from jobs.redis.keys import RESULT_KEY_PREFIX

if TYPE_CHECKING:
    from jobs.conf import JobsOptions

NOT_IN_SCRIPTS = ("", b"")  # script_args() when the record is stored outside


class ResultStore:
    """Result records through a Django cache's own API."""

    colocated = False  # True when the queue's scripts write the records

    def __init__(self, cache: BaseCache, ttl: int) -> None:
        self.cache = cache
        self.ttl = ttl  # seconds

    @property
    def ttl_ms(self) -> int:
        return self.ttl * 1000

    def key(self, result_id: str) -> str:
        return RESULT_KEY_PREFIX + result_id

    # The seam for the queue's scripts

    def script_args(self, record: Record) -> tuple[str, bytes | str]:
        """The key and bytes a queue script writes `record` as, or ("", "")
        when the record lives elsewhere (then store_outside() writes it)."""
        return NOT_IN_SCRIPTS

    def store_outside(self, record: Record, *, only_new: bool = False) -> None:
        """Write `record` unless the queue's scripts already did."""
        self.set(record, only_new=only_new)

    async def astore_outside(self, record: Record, *, only_new: bool = False) -> None:
        """See store_outside()."""
        await self.aset(record, only_new=only_new)

    # Reads and writes

    def get(self, result_id: str) -> Record | None:
        found = self.cache.get(self.key(result_id))
        return cast("Record", found) if is_record(found) else None

    def get_many(self, ids: list[str]) -> dict[str, Record]:
        """The records of `ids` that exist, in one round trip where possible."""
        by_key = self.cache.get_many([self.key(i) for i in ids])
        found = {i: by_key.get(self.key(i)) for i in ids}
        return {i: cast("Record", r) for i, r in found.items() if is_record(r)}

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
    """The same records in a Django RedisCache (our JSON serializer): reads and
    writes go through the cache's API as for any cache; when the cache is on the
    queue's Redis (`colocated`), the queue's scripts also write the records, as
    the bytes `cache.set()` would write, under the key the cache would use."""

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

    def script_args(self, record: Record) -> tuple[str, bytes | str]:
        if not self.colocated:
            return NOT_IN_SCRIPTS
        return self.raw_key(record["id"]), encode(record)

    def store_outside(self, record: Record, *, only_new: bool = False) -> None:
        if not self.colocated:
            self.set(record, only_new=only_new)

    async def astore_outside(self, record: Record, *, only_new: bool = False) -> None:
        if not self.colocated:
            await self.aset(record, only_new=only_new)


def build_store(options: JobsOptions) -> ResultStore:
    """Return the store for OPTIONS: RESULTS_CACHE, or a Redis cache on REDIS_URL."""
    if options.results_cache is None:
        # The cache's connections get our timeouts, TLS checks and retries: a
        # result read on a hung or untrusted Redis fails as the queue's calls do.
        cache_options = {
            **connections.client_kwargs(options, asyncio_=False),
            "serializer": "jobs.serialization.CacheSerializer",
        }
        if connections.is_sentinel(options.redis_url):
            cache_options["pool_class"] = "jobs.redis.sentinel.SentinelPool"
        # A list: a Sentinel URL's commas would split a string into servers.
        cache = RedisCache([options.redis_url], {"OPTIONS": cache_options})
        return RedisResultStore(cache, options.result_ttl, options, colocated=True)
    shared = caches[options.results_cache]
    if isinstance(shared, RedisCache) and same_redis(shared, options.redis_url):
        return RedisResultStore(shared, options.result_ttl, options, colocated=True)
    return ResultStore(shared, options.result_ttl)


def same_redis(cache: Any, redis_url: str) -> bool:
    """Whether a RedisCache uses our serializer on the queue's server and database."""
    servers = getattr(cache, "_servers", [])
    if len(servers) != 1 or not uses_json(cache):
        return False
    if connections.is_sentinel(redis_url):  # the same sentinels, master and db
        return bool(servers[0] == redis_url)

    def where(url: str) -> tuple[str | None, int | None, str]:
        parts = urlsplit(url)
        return parts.hostname, parts.port or 6379, parts.path.strip("/") or "0"

    return where(servers[0]) == where(redis_url)


def uses_json(cache: Any) -> bool:
    """Whether a RedisCache is configured with jobs' CacheSerializer (or a subclass)."""
    serializer = getattr(cache, "_options", {}).get("serializer")
    if isinstance(serializer, str):
        try:
            serializer = import_string(serializer)
        except ImportError:
            return False
    if not isinstance(serializer, type):
        serializer = type(serializer)
    return issubclass(serializer, serialization.CacheSerializer)
