"""Redis Sentinel: connection pools that find the master through the sentinels.

redis-py's own Sentinel pools do the work: each new connection asks the
sentinels where the master is, and a connection that finds its server demoted
(READONLY) or gone is dropped, so the next one goes to the promoted replica.
The hot path (jobs.redis.wire) makes its connections through these pools'
connection classes and drops the ones that fail, which is all a failover needs.

One more case: a planned failover (`SENTINEL FAILOVER`) leaves the old master
up, and a master, for seconds, until the sentinels demote it. Connections made
before would keep writing there, and those writes are lost when it is demoted.
So a connection also asks the sentinels again at most once per RECHECK seconds
per pool, and before it sends, moves from a server that is no longer the master
to the one that is (the command then goes there: nothing is raised).

`SentinelPool` is also a `pool_class` for Django's RedisCache:

    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": ["redis+sentinel://h1:26379,h2:26379/mymaster/0"],  # a list:
        "OPTIONS": {  # a string would be split at its commas
            "pool_class": "jobs.redis.sentinel.SentinelPool",
            "serializer": "jobs.serialization.CacheSerializer",
        },
    }
"""

from __future__ import annotations

import time
from typing import Any, Self

import redis.asyncio.sentinel
import redis.sentinel
from redis.exceptions import ConnectionError as RedisConnectionError

from jobs.conf import SentinelAddress

SENTINEL_OPTIONS = "sentinel_kwargs"  # REDIS_OPTIONS key: the sentinels' own auth, TLS
RECHECK = 1.0  # seconds between a pool's questions to the sentinels, when in use


class MasterCheck:
    """Where a pool's connections last heard the master is, and when to ask the
    sentinels again (one per pool, shared by its connections)."""

    def __init__(self) -> None:
        self.master: tuple[str, int] | None = None
        self.at = 0.0  # time.monotonic() of the last answer

    def seen(self, master: tuple[str, int]) -> None:
        self.master, self.at = master, time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.at + RECHECK:
            return False
        self.at = now  # one question per RECHECK, whoever asks
        return True

    def moved(self, connection: Any) -> bool:
        """Whether `connection`'s server is no longer the master."""
        return self.master is not None and self.master != (
            connection.host,
            connection.port,
        )


class SentinelConnection(redis.sentinel.SentinelManagedConnection):
    """redis-py's, leaving a server that the sentinels no longer call master."""

    def __init__(self, **kwargs: Any) -> None:
        self.master_check: MasterCheck = kwargs.pop("master_check")
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def connect_to(self, address: tuple[str, int]) -> None:
        super().connect_to(address)  # type: ignore[no-untyped-call]
        self.master_check.seen(address)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        check = self.master_check
        if self._sock is not None:
            if check.due():
                try:
                    check.seen(self.connection_pool.get_master_address())
                except RedisConnectionError:
                    pass  # no sentinel answers: keep the master we know
            if check.moved(self):
                self.disconnect()  # the send below connects to the new master
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class AsyncSentinelConnection(redis.asyncio.sentinel.SentinelManagedConnection):
    """See SentinelConnection."""

    def __init__(self, **kwargs: Any) -> None:
        self.master_check: MasterCheck = kwargs.pop("master_check")
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    async def connect_to(self, address: tuple[str, int]) -> None:
        await super().connect_to(address)  # type: ignore[no-untyped-call]
        self.master_check.seen(address)

    async def send_packed_command(
        self, command: Any, check_health: bool = True
    ) -> None:
        check = self.master_check
        if self.is_connected:
            if check.due():
                try:
                    check.seen(await self.connection_pool.get_master_address())
                except RedisConnectionError:
                    pass
            if check.moved(self):
                await self.disconnect()
        await super().send_packed_command(command, check_health)


def _split(url: str, kwargs: dict[str, Any]) -> tuple[SentinelAddress, dict[str, Any]]:
    """The address and the master's connection kwargs (db, ACL user) for `url`."""
    address = SentinelAddress.parse(url)
    kwargs = {**kwargs, "db": address.db, "master_check": MasterCheck()}
    if address.username:
        kwargs["username"] = address.username
    if address.password:
        kwargs["password"] = address.password
    return address, kwargs


def _sentinel_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """How to reach the sentinels: REDIS_OPTIONS' sentinel_kwargs, else the
    master's timeouts (redis-py's default)."""
    given = kwargs.pop(SENTINEL_OPTIONS, None)
    if given is not None:
        return dict(given)
    return {k: v for k, v in kwargs.items() if k.startswith("socket_")}


class SentinelPool(redis.sentinel.SentinelConnectionPool):
    """A sync pool of connections to the master a Sentinel URL names."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Self:
        address, kwargs = _split(url, kwargs)
        sentinels = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(address.sentinels), sentinel_kwargs=_sentinel_kwargs(kwargs)
        )
        kwargs.setdefault("connection_class", SentinelConnection)
        return cls(address.service, sentinels, **kwargs)


class AsyncSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool):
    """See SentinelPool; for one event loop."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Self:
        address, kwargs = _split(url, kwargs)
        sentinels = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(address.sentinels), sentinel_kwargs=_sentinel_kwargs(kwargs)
        )
        kwargs.setdefault("connection_class", AsyncSentinelConnection)
        return cls(address.service, sentinels, **kwargs)
