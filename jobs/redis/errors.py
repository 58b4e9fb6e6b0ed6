"""Redis's errors as ours (Redis): what each means for the caller, with where
to look, as QueueUnavailable, QueueFull or EnqueueError."""

from __future__ import annotations

from typing import Any

from redis.exceptions import AuthenticationError, OutOfMemoryError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.conf import CLUSTER_UNSUPPORTED, JobsOptions, redact
from jobs.exceptions import EnqueueError, JobsError, QueueFull, QueueUnavailable

# What a Redis Cluster node answers a command for keys it does not hold together.
CLUSTER_REPLIES = ("MOVED ", "ASK ", "CROSSSLOT ", "CLUSTERDOWN ")


def refused(config: JobsOptions, exc: BaseException) -> str | None:
    """What to fix in REDIS_URL when Redis answered and refused it (its
    credentials or its database number): waiting or retrying changes nothing.
    None for any other error."""
    where = redact(config.redis_url)
    if isinstance(exc, AuthenticationError):  # reached, and refused
        return (
            f"Redis at {where} refused the credentials ({exc}): check the user "
            "and password in REDIS_URL"
        )
    if isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
        return (
            f"Redis at {where} has no such database ({exc}): the number after "
            "the last / of REDIS_URL must be below Redis's `databases` setting "
            "(16 unless changed)"
        )
    return None


class translate_redis_errors:
    """Turn redis-py errors into ours, with an actionable message.

    consequence: what the failure means for the caller, ending the message.
    """

    def __init__(
        self, config: JobsOptions, consequence: str = "the job was not enqueued"
    ) -> None:
        self.config = config
        self.consequence = consequence

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, JobsError):  # ours already (ResultTimeout is an OSError)
            return
        where = redact(self.config.redis_url)
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
            if isinstance(exc, AuthenticationError):
                fix = refused(self.config, exc)
                raise QueueUnavailable(f"{fix}; {self.consequence}.") from exc
            reason = str(exc) or "no answer"  # asyncio's timeout has no message
            raise QueueUnavailable(
                f"Redis at {where} is unreachable ({reason}); {self.consequence}."
            ) from exc
        if isinstance(exc, ResponseError):  # one test on the no-error path, as before
            if fix := refused(self.config, exc):
                raise EnqueueError(f"{fix}; {self.consequence}.") from exc
            if str(exc).startswith(CLUSTER_REPLIES):
                raise EnqueueError(
                    f"Redis at {where} is a Redis Cluster node ({exc}): "
                    f"{CLUSTER_UNSUPPORTED} {self.consequence[0].upper()}"
                    f"{self.consequence[1:]}."
                ) from exc
        if isinstance(exc, OutOfMemoryError) or (
            isinstance(exc, ResponseError) and "maxmemory" in str(exc)
        ):
            raise QueueFull(
                f"Redis at {where} is full (maxmemory reached under noeviction); "
                f"{self.consequence}. Let workers drain it or raise maxmemory."
            ) from exc
