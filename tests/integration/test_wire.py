"""The hot path: the wire and the worker's ordered batches, against a real Redis."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest
import redis.asyncio
from django.tasks import task_backends
from redis.exceptions import ResponseError

from jobs import records
from jobs.redis import connections, scripts
from jobs.redis.batching import CommandBatcher
from jobs.redis.wire import AsyncWire
from jobs.worker.running import TICK, RunningWriter


@pytest.fixture
async def wire():
    client = connections.new_async_client(task_backends["default"].config)
    wire = AsyncWire(client.connection_pool)
    yield wire
    await wire.aclose()
    await client.aclose()


async def test_batches_keep_the_order_commands_were_made_in(wire, r):
    batcher = CommandBatcher(wire)
    sent = [batcher.send("RPUSH", "order", i) for i in range(500)]
    await asyncio.gather(*sent)
    assert [int(x) for x in r.lrange("order", 0, -1)] == list(range(500))
    assert sent[-1].result() == 500


async def test_errors_reach_only_their_own_command(wire, r):
    batcher = CommandBatcher(wire)
    r.set("text", "x")
    good = batcher.send("SET", "a", 1)
    bad = batcher.send("INCR", "text")
    after = batcher.send("GET", "a")
    assert await good in (True, b"OK")
    with pytest.raises(ResponseError, match="not an integer"):
        await bad
    assert await after == b"1"


async def test_scripts_forgotten_by_redis_are_loaded_again(wire, r):
    batcher = CommandBatcher(wire)
    r.script_flush()
    keys, args = ["k"], ["1", "record", 1000]
    assert await batcher.script(scripts.PROGRESS, keys, args) == 1
    r.script_flush()
    assert await scripts.PROGRESS.acall(wire, keys, args) == 1
    assert r.get("k") == b"record"


async def test_a_dropped_connection_is_replaced(wire, r):
    assert await wire.call("PING") in (True, b"PONG")
    r.client_kill_filter(_type="normal", skipme=True)  # kill the wire's connection
    assert await wire.call("SET", "after", 1) in (True, b"OK")
    assert r.get("after") == b"1"


def connections_opened(r) -> int:
    return int(r.info("stats")["total_connections_received"])


async def test_concurrent_calls_share_one_connection_in_call_order(wire, r):
    await wire.call("PING")  # the wire's connection, opened
    before = connections_opened(r)
    replies = await asyncio.gather(
        *(wire.call("RPUSH", "order", i) for i in range(100))
    )
    assert replies == list(range(1, 101))
    assert [int(x) for x in r.lrange("order", 0, -1)] == list(range(100))
    # One round trip at a time on the connection it had: no new connection
    # (it was one per call in flight, closed again beyond IDLE_MAX).
    assert connections_opened(r) == before
    assert not wire.busy and not wire.waiting


async def test_concurrent_calls_go_as_one_pipeline(wire, r):
    await wire.call("PING")
    calls = [asyncio.ensure_future(wire.call("INCR", "n")) for _ in range(50)]
    await asyncio.sleep(0)  # all 50 made: the first in flight, 49 waiting
    assert wire.busy and len(wire.waiting) == 49
    assert sorted(await asyncio.gather(*calls)) == list(range(1, 51))


async def test_errors_reach_only_their_own_concurrent_call(wire, r):
    r.set("text", "x")
    got = await asyncio.gather(
        wire.call("SET", "a", 1),
        wire.call("INCR", "text"),
        wire.call("GET", "a"),
        return_exceptions=True,
    )
    assert got[0] in (True, b"OK")
    assert isinstance(got[1], ResponseError) and "not an integer" in str(got[1])
    assert got[2] == b"1"


async def test_a_cancelled_caller_does_not_upset_the_others(wire, r):
    leader = asyncio.ensure_future(wire.call("BLPOP", "never", 5))
    await asyncio.sleep(0.05)  # blocked in Redis, holding the wire
    queued = [asyncio.ensure_future(wire.call("RPUSH", "l", i)) for i in range(3)]
    await asyncio.sleep(0)
    queued[1].cancel()  # waiting: its command is not sent
    leader.cancel()  # mid-read: its connection is dropped, the rest go on
    assert await asyncio.gather(queued[0], queued[2]) == [1, 2]
    assert r.lrange("l", 0, -1) == [b"0", b"2"]
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await wire.call("PING") in (True, b"PONG")


async def test_concurrent_calls_survive_a_dropped_connection(wire, r):
    await wire.call("PING")
    r.client_kill_filter(_type="normal", skipme=True)  # kill the wire's connection
    replies = await asyncio.gather(*(wire.call("INCR", "n") for _ in range(20)))
    assert sorted(replies) == list(range(1, 21))


async def test_running_is_written_only_for_jobs_still_running_after_the_delay(
    wire, r, loop_clock
):
    # The loop's clock moves only when the test says: sleeping instead let a
    # busy machine wake the test past the retry's deadline (1 run in 20 failed).
    store = task_backends["default"].results
    batcher = CommandBatcher(wire)
    writer = RunningWriter(store, batcher, delay=0.1)
    for job_id in ("quick", "slow-1", "slow-2"):
        writer.add({"id": job_id, "status": "RUNNING"})
    writer.discard("quick")  # finished within the delay
    await loop_clock.advance(0.06)
    writer.add({"id": "quick", "status": "RUNNING"})  # retried: due at 0.16
    await batcher.send("PING")  # behind any write due by now, in order
    assert r.get(store.raw_key("slow-1")) is None  # not yet
    await loop_clock.advance(0.05)  # 0.11: past the first deadlines, not the retry's
    await batcher.send("PING")
    assert r.get(store.raw_key("quick")) is None  # its first deadline wrote nothing
    for job_id in ("slow-1", "slow-2"):
        assert records.decode(r.get(store.raw_key(job_id)))["status"] == "RUNNING"
        assert 0 < r.ttl(store.raw_key(job_id)) <= store.ttl
    assert writer.timer is not None  # for the retry, TICK or more later
    await loop_clock.advance(TICK + 0.01)  # 0.17: past the retry's 0.16, the timer's
    await batcher.send("PING")
    assert records.decode(r.get(store.raw_key("quick")))["status"] == "RUNNING"
    assert writer.timer is None and not writer.pending  # nothing left to wake for


def test_sync_calls_from_threads_are_in_flight_at_once(r):
    """16 threads' enqueue() are not serialized: each has a connection of its own."""
    wire = connections.sync_wire(task_backends["default"].config)
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda i=i: got.append(wire.call("BLPOP", f"k{i}", 10)))
        for i in range(16)
    ]
    for thread in threads:
        thread.start()
    while int(r.info("clients")["blocked_clients"]) < 16:  # all 16 wait in Redis
        time.sleep(0.005)
    for i in range(16):
        r.rpush(f"k{i}", i)
    for thread in threads:
        thread.join()
    assert sorted(int(reply[1]) for reply in got) == list(range(16))


async def test_calls_waiting_behind_a_timed_out_round_trip_fail_with_it(own_redis):
    server = own_redis()
    client = redis.asyncio.Redis.from_url(server.url, socket_timeout=0.5)
    wire = AsyncWire(client.connection_pool)
    try:
        await wire.call("PING")
        server.proc.send_signal(signal.SIGSTOP)  # hung: nothing answers
        calls = [wire.call("INCR", "n") for _ in range(5)]
        errors = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(error, TimeoutError) for error in errors), errors
        # The leader's timeout, handed to the calls behind it: none of them
        # waited a socket_timeout of its own.
        assert all(error is errors[0] for error in errors)
        assert not wire.busy and not wire.waiting
    finally:
        server.proc.send_signal(signal.SIGCONT)
        await wire.aclose()
        await client.aclose()
