"""Scripts that queue jobs, run on the primary (Redis) and, with WAIT_REPLICAS,
acknowledged by that many replicas before the caller hears the job is queued.
"""

from __future__ import annotations

from typing import Any

from jobs.conf import JobsOptions
from jobs.exceptions import NotReplicated
from jobs.redis import connections
from jobs.redis.lua import LuaScript, Wait


def write(
    config: JobsOptions, script: LuaScript, keys: list[Any], args: list[Any]
) -> Any:
    """Run a script that queues jobs; with WAIT_REPLICAS, return once that
    many replicas have its writes, or raise NotReplicated."""
    if not config.wait_replicas:
        return script.call(connections.sync_wire(config), keys, args)
    client = connections.sync_client(config)
    reply, acked = script.call_replicated(client, keys, args, wait_args(config))
    return checked(config, reply, acked)


async def awrite(
    config: JobsOptions, script: LuaScript, keys: list[Any], args: list[Any]
) -> Any:
    """See write()."""
    if not config.wait_replicas:
        return await script.acall(connections.async_wire(config), keys, args)
    client = connections.async_client(config)
    reply, acked = await script.acall_replicated(client, keys, args, wait_args(config))
    return checked(config, reply, acked)


def wait_args(config: JobsOptions) -> Wait:
    return config.wait_replicas, int(config.wait_timeout * 1000)


def checked(config: JobsOptions, reply: Any, acked: int) -> Any:
    # A job or workflow id, or a unique key, already taken wrote nothing:
    # nothing to wait for.
    if reply == 1 and acked < config.wait_replicas:
        raise NotReplicated(
            f"{acked} of {config.wait_replicas} replicas acknowledged the "
            f"job within {config.wait_timeout} s (WAIT_REPLICAS)."
        )
    return reply
