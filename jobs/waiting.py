"""Wait for a job to finish without polling.

The waiter subscribes to `jobs:done:<id>` *before* reading the result, so a job
finishing in between cannot be missed. The worker's finish script publishes the
final record (or an empty message when the record lives in another cache). A
slow re-read (every RECHECK seconds) covers a message lost to a Redis restart.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.tasks.exceptions import TaskResultDoesNotExist

from jobs.exceptions import ResultTimeout
from jobs.records import FINISHED, Record, decode
from jobs.redis import connections
from jobs.redis.keys import DONE_CHANNEL_PREFIX

if TYPE_CHECKING:
    from jobs.conf import JobsOptions
    from jobs.results import ResultStore

RECHECK = 5.0  # seconds between safety re-reads while waiting


def _remaining(deadline: float | None) -> float:
    if deadline is None:
        return RECHECK
    return min(RECHECK, deadline - time.monotonic())


def _from_message(message: dict[str, Any] | None) -> Record | None:
    if message is None or message.get("type") != "message" or not message["data"]:
        return None
    return decode(message["data"])


def _timed_out(result_id: str, timeout: float | None) -> ResultTimeout:
    return ResultTimeout(f"Task {result_id} did not finish within {timeout} s.")


def finished_record(
    store: ResultStore, config: JobsOptions, result_id: str, timeout: float | None
) -> Record:
    """Block until the job is finished; return its record."""
    return until_finished(
        lambda: store.get(result_id), config, result_id, timeout, _from_message
    )


async def afinished_record(
    store: ResultStore, config: JobsOptions, result_id: str, timeout: float | None
) -> Record:
    """See finished_record()."""
    return await auntil_finished(
        lambda: store.aget(result_id), config, result_id, timeout, _from_message
    )


def until_finished[State: Mapping[str, Any]](
    read: Callable[[], State | None],
    config: JobsOptions,
    done_id: str,
    timeout: float | None,
    from_message: Callable[[dict[str, Any] | None], State | None] = lambda m: None,
) -> State:
    """Block until `read()` says SUCCESSFUL or FAILED, woken on `done_id`'s
    channel (whose message `from_message` may turn into the state itself)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pubsub = connections.sync_client(config).pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(DONE_CHANNEL_PREFIX + done_id)
        state = read()
        while state is not None and state["status"] not in FINISHED:
            remaining = _remaining(deadline)
            if remaining <= 0:
                raise _timed_out(done_id, timeout)
            message = pubsub.get_message(
                ignore_subscribe_messages=True, timeout=remaining
            )
            state = from_message(message) or read()
    finally:
        pubsub.close()
    if state is None:
        raise TaskResultDoesNotExist(done_id)
    return state


async def auntil_finished[State: Mapping[str, Any]](
    read: Callable[[], Awaitable[State | None]],
    config: JobsOptions,
    done_id: str,
    timeout: float | None,
    from_message: Callable[[dict[str, Any] | None], State | None] = lambda m: None,
) -> State:
    """See until_finished()."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pubsub = connections.async_client(config).pubsub()
    try:
        await pubsub.subscribe(DONE_CHANNEL_PREFIX + done_id)
        state = await read()
        while state is not None and state["status"] not in FINISHED:
            remaining = _remaining(deadline)
            if remaining <= 0:
                raise _timed_out(done_id, timeout)
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=remaining
            )
            state = from_message(message) or await read()
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    if state is None:
        raise TaskResultDoesNotExist(done_id)
    return state
