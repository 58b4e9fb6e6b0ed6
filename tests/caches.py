"""A Django RedisCache that counts the calls made through its API, to prove
result reads and writes go through it (tests/integration/test_results.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.cache.backends.redis import RedisCache

calls: Counter[str] = Counter()


class CountingRedisCache(RedisCache):
    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        calls["get"] += 1
        return super().get(key, default, version)

    def get_many(self, keys: Any, version: Any = None) -> Any:
        calls["get_many"] += 1
        return super().get_many(keys, version)

    def set(
        self, key: Any, value: Any, timeout: Any = None, version: Any = None
    ) -> None:
        calls["set"] += 1
        super().set(key, value, timeout, version)
