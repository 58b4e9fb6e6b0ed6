"""What is going on in Redis, read for the admin dashboard and the metrics.

Everything here reads; nothing changes a job. Queues hold every job not yet
finished, scored by due time (ms); a running job's score is its lease end, so a
queue splits into due now, running (scored within one LEASE ahead and holding a
lease) and deferred (the rest of the future). One read-only script counts all
queues at once, so the numbers agree with each other.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from django.utils import timezone

from jobs.records import Record, instant
from jobs.redis import connections
from jobs.redis.keys import (
    PRIORITIES_KEY_PREFIX,
    RECENT_KEY,
    WORKER_KEY_PREFIX,
    WORKERS_KEY,
    priority_prefix,
    queue_key,
)
from jobs.redis.scripts import LuaScript, now_ms

if TYPE_CHECKING:
    import redis

    from jobs.backend import JobsBackend

RUNNING_MAX = 500  # running job ids returned per queue
FINISHED = ("SUCCESSFUL", "FAILED")

# KEYS: n queues, their n priorities sets. ARGV: now ms, lease ms, running ids
# returned at most per queue, then the n queues' priority prefixes.
# Returns per queue {length, due now, running count, {id, worker id, ...}},
# counting the jobs of every priority (see scripts.QUEUE_KEYS_LUA).
QUEUES = LuaScript("""#!lua flags=no-writes
local now, lease, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local nq = #KEYS / 2
local out = {}
for i = 1, nq do
  local sets = {KEYS[i]}
  for _, level in ipairs(redis.call('ZRANGE', KEYS[nq + i], 0, -1)) do
    sets[#sets + 1] = ARGV[3 + i] .. level
  end
  local length, due, running, ids = 0, 0, 0, {}
  for _, q in ipairs(sets) do
    length = length + redis.call('ZCARD', q)
    due = due + redis.call('ZCOUNT', q, '-inf', now)
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', q, '(' .. now, now + lease)) do
      local holder = redis.call('GET', 'arq:in-progress:' .. id)
      if holder then
        running = running + 1
        if running <= cap then
          ids[#ids + 1] = id
          ids[#ids + 1] = holder
        end
      end
    end
  end
  out[i] = {length, due, running, ids}
end
return out
""")


def queue_keys(client: redis.Redis, name: str) -> list[str]:
    """The sorted sets holding queue `name`'s jobs: arq's, then one per priority."""
    levels = cast("list[bytes]", client.zrange(PRIORITIES_KEY_PREFIX + name, 0, -1))
    prefix = priority_prefix(name)
    return [queue_key(name), *(prefix + level.decode() for level in levels)]


def from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """One queue: jobs in it, split by what they are waiting for."""

    name: str
    length: int  # every unfinished job: due + running + deferred
    due: int  # waiting for a free worker now
    running: int
    deferred: int  # due later (run_after, a retry's backoff)
    running_ids: dict[str, str] = field(default_factory=dict)  # job id -> worker id


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """A live worker, as its last heartbeat described it."""

    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    running: int
    jobs: list[str]
    started: datetime | None
    heartbeat: datetime
    heartbeat_age: float  # seconds
    complete: int
    failed: int
    retried: int


def client_of(backend: JobsBackend) -> redis.Redis:
    return connections.sync_client(backend.config)


def queue_stats(backend: JobsBackend, at_ms: int | None = None) -> list[QueueStats]:
    """Count each of the backend's queues, in its declared order."""
    names = backend.queue_order
    keys = [queue_key(name) for name in names]
    keys += [PRIORITIES_KEY_PREFIX + name for name in names]
    wire = connections.sync_wire(backend.config)
    # Enqueue scores carry a µs fraction: round up, or a job queued this very
    # millisecond would count as deferred.
    now = math.ceil(time.time() * 1000) if at_ms is None else at_ms
    args: list[Any] = [now, backend.config.lease_ms, RUNNING_MAX]
    args += [priority_prefix(name) for name in names]
    rows = QUEUES.call(wire, keys, args)
    stats = []
    for name, (length, due, running, pairs) in zip(names, rows, strict=True):
        ids = {
            pairs[i].decode(): pairs[i + 1].decode() for i in range(0, len(pairs), 2)
        }
        stats.append(
            QueueStats(
                name=name,
                length=int(length),
                due=int(due),
                running=int(running),
                deferred=int(length) - int(due) - int(running),
                running_ids=ids,
            )
        )
    return stats


def _int(info: dict[str, str], name: str) -> int:
    try:
        return int(info.get(name, 0))
    except ValueError:
        return 0


def worker_info(worker_id: str, beat_ms: float, info: dict[str, str]) -> WorkerInfo:
    started = _int(info, "started")
    return WorkerInfo(
        id=worker_id,
        host=info.get("host", ""),
        pid=_int(info, "pid"),
        queues=[q for q in info.get("queues", "").split(",") if q],
        concurrency=_int(info, "concurrency"),
        running=_int(info, "running"),
        jobs=[j for j in info.get("jobs", "").split(",") if j],
        started=from_ms(started * 1000) if started else None,
        heartbeat=from_ms(beat_ms),
        heartbeat_age=max(now_ms() - beat_ms, 0) / 1000,
        complete=_int(info, "complete"),
        failed=_int(info, "failed"),
        retried=_int(info, "retried"),
    )


def workers(backend: JobsBackend) -> list[WorkerInfo]:
    """The live workers: those whose description has not expired (about a LEASE
    after their last heartbeat), oldest first."""
    client = client_of(backend)
    beats = cast(
        "list[tuple[bytes, float]]", client.zrange(WORKERS_KEY, 0, -1, withscores=True)
    )
    with client.pipeline(transaction=False) as pipe:
        for worker_id, _ in beats:
            pipe.hgetall(WORKER_KEY_PREFIX + worker_id.decode())
        described = pipe.execute()
    alive = []
    for (worker_id, beat), raw in zip(beats, described, strict=True):
        if raw:
            info = {k.decode(): v.decode() for k, v in raw.items()}
            alive.append(worker_info(worker_id.decode(), beat, info))
    return sorted(alive, key=lambda w: (w.started or w.heartbeat, w.id))


def records(backend: JobsBackend, ids: list[str]) -> dict[str, Record]:
    """The result records of `ids` that still exist, in one round trip."""
    found = backend.results.get_many(ids) if ids else {}
    return {i: record for i, record in found.items() if _ours(record, backend)}


def _ours(record: Any, backend: JobsBackend) -> bool:
    return isinstance(record, dict) and record.get("backend", backend.alias) == (
        backend.alias
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of finished jobs, newest first, with their end times (ms)."""

    rows: list[tuple[Record, float]]
    next_offset: int | None  # where the next page starts, if there is one


def recent(
    backend: JobsBackend,
    *,
    window: float,
    limit: int = 50,
    offset: int = 0,
    status: str | None = None,
    scan_max: int = 5000,
) -> Page:
    """Finished jobs that ended within the last `window` seconds, newest first.

    `offset` counts history entries to skip (a page's `next_offset`); `status`
    keeps SUCCESSFUL or FAILED ones only, reading at most `scan_max` entries.
    Records that expired before their history entry are left out.
    """
    client = client_of(backend)
    low = now_ms() - int(window * 1000)
    rows: list[tuple[Record, float]] = []
    batch = max(limit, 200) if status else limit + 1
    position = offset
    while position - offset < scan_max:
        entries = cast(
            "list[tuple[bytes, float]]",
            client.zrevrangebyscore(
                RECENT_KEY, "+inf", low, start=position, num=batch, withscores=True
            ),
        )
        found = records(backend, [e[0].decode() for e in entries])
        for job_id, score in entries:
            record = found.get(job_id.decode())
            if record is not None and status in (None, record.get("status")):
                if len(rows) == limit:
                    return Page(rows=rows, next_offset=position)
                rows.append((record, score))
            position += 1
        if len(entries) < batch:
            return Page(rows=rows, next_offset=None)
    return Page(rows=rows, next_offset=position)


def running_jobs(
    backend: JobsBackend, stats: list[QueueStats]
) -> list[tuple[Record, str]]:
    """The running jobs' records with the id of the worker running each."""
    held = {job: worker for q in stats for job, worker in q.running_ids.items()}
    found = records(backend, list(held))
    rows = [(found[i], held[i]) for i in held if i in found]
    return sorted(rows, key=lambda row: row[0].get("started_at") or "")


def duration(record: Record) -> float | None:
    """Seconds the last attempt ran (None: it never started)."""
    start = record.get("last_attempted_at") or record.get("started_at")
    end = record.get("finished_at")
    if not start:
        return None
    end_dt = instant(end) if end else timezone.now()
    return max((end_dt - instant(start)).total_seconds(), 0.0)  # type: ignore[operator]
