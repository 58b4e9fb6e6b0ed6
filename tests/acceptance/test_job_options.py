"""Per-job options with a real `jobs_worker` process: priority (jobs queued
while no worker runs are taken highest first, FIFO among equals), expiry,
unique jobs, rate limits."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from jobs.redis.keys import RATE_KEY_PREFIX, TURNS_KEY_SUFFIX
from tests import tasks
from tests.monitor import Command, monitored
from tests.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_process_takes_jobs_by_priority(worker_process, r):
    plan = [0, -10, 3, 3, 0, 100, -10, 3]
    for i, priority in enumerate(plan):
        tasks.in_order.using(priority=priority).enqueue(f"{priority}/{i}")
    worker_process("-c", "1")
    wait_until(lambda: r.llen("test:order") == len(plan), what="every job to run")
    expected = sorted(range(len(plan)), key=lambda i: (-plan[i], i))
    assert [x.decode() for x in r.lrange("test:order", 0, -1)] == [
        f"{plan[i]}/{i}" for i in expected
    ]


def test_a_worker_process_records_an_expired_job_failed(worker_process, r):
    expired = tasks.in_order.using(expires=0.2).enqueue("expired")
    wait_until(lambda: r.exists(f"arq:job:{expired.id}") == 0, what="the expiry")
    worker_process()
    fresh = tasks.in_order.enqueue("fresh")
    assert fresh.get(timeout=20) == "fresh"
    wait_until(lambda: expired.refresh() or expired.status == "FAILED")
    assert expired.errors[-1].exception_class_path == "jobs.exceptions.JobExpired"
    assert [x.decode() for x in r.lrange("test:order", 0, -1)] == ["fresh"]


def test_a_worker_process_releases_a_unique_key_when_its_job_ends(worker_process, r):
    unique = tasks.counted.using(unique=True)
    first = unique.enqueue("unique", 0.3)
    worker_process()
    wait_until(lambda: r.get("test:runs:unique") == b"1", what="the job to start")
    assert unique.enqueue("unique", 0.3).id == first.id  # running: the same job
    assert first.get(timeout=20) == "unique"
    second = unique.enqueue("unique", 0.3)
    assert second.id != first.id
    assert second.get(timeout=20) == "unique"


@dataclass
class Decision:
    """One run of the RATE script, as Redis's MONITOR saw it."""

    job: str
    now: int  # ms, the script's read of Redis's clock
    had_turn: bool  # the job's turn had come (the script dropped it)
    free: float  # the next free turn, before
    tat: float  # GCRA's theoretical time of the next start, before
    started: bool
    free_after: float
    tat_after: float
    turn: float | None = None  # the turn handed out, when not started


def rate_decisions(log: list[Command], task_path: str) -> list[Decision]:
    """The RATE script's decisions for one task, from what it read and wrote."""
    key = RATE_KEY_PREFIX + task_path
    turns_key = key + TURNS_KEY_SUFFIX
    decisions: list[Decision] = []
    now, job, had_turn, free, tat = 0, "", False, 0.0, 0.0
    for command in (c for c in log if c.lua):
        match command.words:
            case ["TIME"]:
                now, had_turn = command.ms, False
            case ["ZSCORE", k, j] if k == turns_key:
                job = j
            case ["ZREM", k, _] if k == turns_key:
                had_turn = True
            case ["HSET", k, "free", f, *rest] if k == key:
                after = float(rest[1]) if rest else tat
                decision = Decision(
                    job, now, had_turn, free, tat, bool(rest), float(f), after
                )
                decisions.append(decision)
                free, tat = decision.free_after, decision.tat_after
            case ["ZADD", k, turn, _] if k == turns_key:
                decisions[-1].turn = float(turn)
    return decisions


def follows_the_rule(d: Decision, now: int, interval: float) -> bool:
    """Whether `d` is what GCRA (tolerance one interval) and the turns ask for."""
    if (d.had_turn or d.free <= now) and now >= d.tat - interval:
        return (
            d.started
            and d.tat_after == max(d.tat, now) + interval
            and d.free_after == max(d.free, now + interval)
        )
    turn = max(d.free, now)  # the next free turn, or now
    return not d.started and d.turn == turn and d.free_after == turn + interval


def test_three_worker_processes_keep_a_task_within_its_rate_limit(worker_process, r):
    count, interval = 31, 100  # tests.tasks.rated: 10/s, so about 3 s
    with monitored(r) as log:
        ids = {tasks.rated.enqueue(f"r{i}").id: f"r{i}" for i in range(count)}
        for _ in range(3):
            worker_process("-c", "10")
        wait_until(lambda: r.llen("test:rated") == count, timeout=30, what="every job")
    rows = dict(row.decode().split() for row in r.lrange("test:rated", 0, -1))
    assert sorted(rows) == sorted(ids.values())  # each ran once
    decisions = rate_decisions(log, "tests.tasks.rated")
    grants = [(d.job, d.now) for d in decisions if d.started]
    assert sorted(job for job, _ in grants) == sorted(ids)  # each let start once
    # Each ran after it was let start (the task reads Redis's TIME too).
    assert all(float(rows[ids[job]]) * 1000 >= ms for job, ms in grants)
    # Every decision, to start a job or to give it a later turn, followed the
    # rule: no job started too soon, none waited longer than the rate asks.
    # (MONITOR stamps the script's TIME read 0-3 us after it: its ms may be
    # one later than the script's.)
    assert any(not d.started for d in decisions), "the backlog was never given turns"
    broken = [
        d
        for d in decisions
        if not follows_the_rule(d, d.now, interval)
        and not follows_the_rule(d, d.now - 1, interval)
    ]
    assert not broken
    # So, on Redis's clock, the k-th start after any start came at least k - 1
    # intervals after it: at most N + 1 = 11 in any second, 31 in 2.9 s or more.
    starts = sorted(ms for _, ms in grants)
    assert all(
        later - earlier >= (k - 1) * interval - 1
        for i, earlier in enumerate(starts)
        for k, later in enumerate(starts[i + 1 :], 1)
    )
    busiest = max(sum(1 for t in starts if s <= t < s + 1000) for s in starts)
    rate = (count - 1) / (starts[-1] - starts[0]) * 1000
    print(f"[measured] 3 workers, limit 10/s: {rate:.2f} starts/s, {busiest} in 1 s")
