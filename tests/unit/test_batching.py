"""The worker's command batcher (jobs.redis.batching) and RUNNING writer
(jobs.worker.running), on a wire that records what it is asked to send.

The same pieces run against a real Redis in tests/integration/test_wire.py;
here the order, the batching and the timing are checked exactly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import NoScriptError, ResponseError

from jobs.redis import flows, scripts
from jobs.redis.batching import CommandBatcher
from jobs.results import RedisResultStore, ResultStore
from jobs.worker.running import TICK, RunningWriter


class RecordingWire:
    """Answers each command with its own name, one batch at a time on request."""

    def __init__(self, *, hold: bool = False) -> None:
        self.batches: list[list[tuple[Any, ...]]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_next: BaseException | None = None
        self.noscript_once = False

    async def call_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.batches.append(list(commands))
            await self.release.wait()
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            if self.noscript_once and commands[0][0] == "EVALSHA":
                self.noscript_once = False
                return [
                    NoScriptError("NOSCRIPT") if c[0] == "EVALSHA" else c[0]
                    for c in commands
                ]
            return [c[0] if c[0] != "BAD" else ResponseError("bad") for c in commands]
        finally:
            self.in_flight -= 1


async def test_commands_made_while_a_batch_is_out_go_together_in_order():
    wire = RecordingWire(hold=True)
    batcher = CommandBatcher(wire)  # type: ignore[arg-type]
    first = batcher.send("A", 1)
    await asyncio.sleep(0)  # the first batch leaves alone
    later = [batcher.send("B", i) for i in range(5)]
    wire.release.set()
    assert await first == "A"
    assert await asyncio.gather(*later) == ["B"] * 5
    assert wire.batches == [[("A", 1)], [("B", i) for i in range(5)]]
    assert wire.most_in_flight == 1


async def test_an_error_reaches_its_own_command_only():
    batcher = CommandBatcher(RecordingWire())  # type: ignore[arg-type]
    good, bad = batcher.send("OK"), batcher.send("BAD")
    assert await good == "OK"
    with pytest.raises(ResponseError):
        await bad


async def test_a_failed_round_trip_fails_the_whole_batch_and_the_next_goes_on():
    wire = RecordingWire()
    wire.fail_next = ConnectionError("Redis went away")
    batcher = CommandBatcher(wire)  # type: ignore[arg-type]
    lost = [batcher.send("A"), batcher.send("B")]
    for future in lost:
        with pytest.raises(ConnectionError):
            await future
    assert await batcher.send("C") == "C"


async def test_scripts_redis_forgot_are_loaded_and_the_batch_sent_again():
    wire = RecordingWire()
    wire.noscript_once = True
    batcher = CommandBatcher(wire)  # type: ignore[arg-type]
    assert await batcher.script(scripts.TRIM_RECENT, ["k"], [0, 1]) == "EVALSHA"
    sent = [batch[0][0] for batch in wire.batches]
    assert sent == ["EVALSHA", "SCRIPT", "EVALSHA"]
    # the workflows' scripts too: a step's job ends with FINISH_STEP
    assert len(wire.batches[1]) == len(scripts.ALL) + len(flows.ALL)


async def test_only_the_commands_refused_for_a_missing_script_are_sent_again():
    wire = RecordingWire(hold=True)
    wire.noscript_once = True
    batcher = CommandBatcher(wire)  # type: ignore[arg-type]
    claim = batcher.script(scripts.TRIM_RECENT, ["k"], [0, 1])
    written = batcher.send("SET", "k", 1)
    finish = batcher.script(scripts.TRIM_RECENT, ["k"], [0, 2])
    wire.release.set()
    assert await asyncio.gather(claim, written, finish) == ["EVALSHA", "SET", "EVALSHA"]
    first, _, again = wire.batches
    assert [c[0] for c in first] == ["EVALSHA", "SET", "EVALSHA"]
    assert again == [first[0], first[2]]  # the SET, which ran, is not run twice


@pytest.fixture
def colocated() -> RedisResultStore:
    # A RedisCache object connects only when used: keys alone need no server.
    cache = RedisCache("redis://127.0.0.1:1/0", {"KEY_PREFIX": "p"})
    return RedisResultStore(cache, 60, options=None, colocated=True)  # type: ignore[arg-type]


async def test_running_is_sent_only_for_jobs_still_running_after_the_delay(colocated):
    wire = RecordingWire()
    writer = RunningWriter(colocated, CommandBatcher(wire), delay=0.05)  # type: ignore[arg-type]
    for job_id in ("quick", "slow"):
        writer.add({"id": job_id, "status": "RUNNING"})  # type: ignore[typeddict-item]
    assert writer.discard("quick") is None  # finished in time: nothing to wait for
    await asyncio.sleep(0.05 + TICK + 0.02)
    sent = [command for batch in wire.batches for command in batch]
    assert [(c[0], c[1], c[3:]) for c in sent] == [
        ("SET", colocated.raw_key("slow"), ("EX", 60))
    ]
    assert writer.timer is None and not writer.pending


class SlowCache(LocMemCache):
    """A per-process cache whose writes take 50 ms, like a remote one."""

    def set(self, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.05)
        super().set(*args, **kwargs)


async def test_a_record_stored_outside_is_written_by_the_store_and_awaitable():
    store = ResultStore(SlowCache("running-test", {}), 60)
    wire = RecordingWire()
    writer = RunningWriter(store, CommandBatcher(wire), delay=0.01)  # type: ignore[arg-type]
    writer.add({"id": "slow", "status": "RUNNING"})  # type: ignore[typeddict-item]
    await asyncio.sleep(0.01 + TICK)
    in_flight = writer.discard("slow")  # the job ended while RUNNING is written
    assert in_flight is not None and not in_flight.done()
    await in_flight  # what the outcome's write waits for
    assert store.get("slow") == {"id": "slow", "status": "RUNNING"}
    assert wire.batches == []  # nothing for the queue's Redis
